"""Many travellers at once, and crashes: the real `itinerabot serve` under a burst of updates
from 200 chats, SIGKILLed at seeded random moments and restarted, loses no update and handles
none twice.

Real time, real sockets, real signals (see test_serve_e2e.py). The proof reads two records:
the fake Telegram's chat logs (what each traveller saw, in order) and the store (the outbox rows
answering updates and each chat's dialogue state: a re-handled update adds a row and moves the
dialogue on, a lost one leaves a chat short).
"""

from __future__ import annotations

import json
import random
import sqlite3
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import trio

from itinerabot.store.inbox import inbox_path
from itinerabot.store.misc import OFFSET_KEY
from sandbox.demo import Sandbox, open_sandbox
from sandbox.serve import wait_for
from sandbox.telegram import FakeBotApi

pytestmark = pytest.mark.process

CHATS = 200
FIRST_CHAT = 30_001
CHAT_IDS = range(FIRST_CHAT, FIRST_CHAT + CHATS)
KILLS = 3
#: what each traveller sends, and a phrase of the one text the bot answers each with
STEPS = (
    ("/start", "Passenger name"),
    ("<name>", "Is anyone else travelling"),
    ("no", "departure airport?"),
)
#: the dialogue's place after the three steps: the first flight's origin
AT = "0.origin"


def passenger(chat_id: int) -> str:
    """A name of this chat alone (letters only, as a passport prints it)."""
    n = chat_id - FIRST_CHAT
    return "Jane " + "".join(chr(ord("a") + n // 26**k % 26) for k in (2, 1, 0))


def message(chat_id: int, step: int) -> str:
    action = STEPS[step][0]
    return passenger(chat_id) if action == "<name>" else action


def bot_texts(api: FakeBotApi, chat_id: int) -> list[str]:
    """The texts the bot sent in `chat_id`, in order (keyboard notes left out)."""
    return [
        line.what
        for line in api.chat_log(chat_id)
        if line.who == "bot" and not line.what.startswith("[")
    ]


def split_copies(texts: list[str]) -> tuple[list[str], list[str]]:
    """(texts seen first, copies of a text already seen). Each answer here is a distinct text,
    so a copy is one outbox row sent twice (or an update answered twice: the outbox tells)."""
    fresh: list[str] = []
    copies: list[str] = []
    for text in texts:
        (copies if text in fresh else fresh).append(text)
    return fresh, copies


def answered(api: FakeBotApi, chat_id: int) -> bool:
    return len(split_copies(bot_texts(api, chat_id))[0]) >= len(STEPS)


@dataclass
class Kill:
    """One SIGKILL: when it came, and what the dead process left behind."""

    moment: str  # what the test waited for before killing
    #: not yet handled: at the fake Telegram (no offset passed them), or kept in the bot's
    #: inbox and not committed to its store
    unhandled_updates: int
    texts_sent: int  # by the bot so far, in all chats
    #: outbox rows the dead process left in flight: (chat, text), which may go out twice
    in_flight: list[tuple[int, str]] = field(default_factory=list)

    def __str__(self) -> str:
        return (
            f"at {self.moment} ({self.unhandled_updates} updates unhandled,"
            f" {self.texts_sent} texts sent, {len(self.in_flight)} sends in flight)"
        )


def explain_short(api: FakeBotApi, store: Path, kills: list[Kill], chat: int) -> str:
    """A chat that misses an answer: what it shows, its outbox rows, the kills that found one
    of its sends in flight."""
    caught = [i + 1 for i, kill in enumerate(kills) if any(c == chat for c, _ in kill.in_flight)]
    return (
        f"chat {chat}:\n{api.transcript(chat)}\n"
        f"outbox (kind, status, in flight, sends without an answer): {outbox_of(store, chat)}\n"
        f"a send of this chat was in flight at kill(s) {caught}"
    )


def texts_sent(api: FakeBotApi) -> int:
    return sum(call.method == "sendMessage" for call in api.calls)


async def kill_at_random_moment(sandbox: Sandbox, rng: random.Random) -> Kill:
    """SIGKILL the bot at a seeded random point of the burst's progress, then 0-10 ms on:
    while updates are being handled, if Telegram still holds some (the offset has not passed
    them), else while the answers are being sent."""
    api, store = sandbox.api, sandbox.workdir / "itinerabot.sqlite3"
    left = CHATS * len(STEPS) - texts_sent(api)
    if unhandled := unhandled_updates(api, store):
        target = rng.randrange(unhandled)
        moment = f"{target} updates left unhandled"
        await wait_for(lambda: unhandled_updates(api, store) <= target, 20, interval=0.002)
    elif left > 10:  # (not the very last texts: a copy counts as a text sent, a loss not)
        target = CHATS * len(STEPS) - rng.randint(10, left - 1)
        moment = f"{target} texts sent"
        await wait_for(lambda: texts_sent(api) >= target, 20, interval=0.005)
    else:
        moment = "the last texts being sent"
    await trio.sleep(rng.choice([0, 0.003, 0.01]))
    kill = Kill(moment, unhandled_updates(api, store), texts_sent(api))
    assert await sandbox.kill_bot() == -9
    kill.in_flight = in_flight(store)
    return kill


def unhandled_updates(api: FakeBotApi, store: Path) -> int:
    """Updates the bot has not handled yet: still at Telegram, or in its inbox above the
    stored offset and not recorded as handled (read while the bot runs: WAL readers)."""
    conn = sqlite3.connect(store)
    try:
        row = conn.execute("SELECT value FROM kv WHERE key = ?", (OFFSET_KEY,)).fetchone()
        offset = int(row[0]) if row else 0
        handled = {u for (u,) in conn.execute("SELECT update_id FROM handled_updates")}
    finally:
        conn.close()
    inbox = inbox_path(store)
    kept: set[int] = set()
    if inbox.exists():
        conn = sqlite3.connect(inbox)
        try:
            rows = conn.execute("SELECT update_id FROM inbox WHERE update_id >= ?", (offset,))
            kept = {u for (u,) in rows}
        finally:
            conn.close()
    return api.pending_updates + len(kept - handled)


def in_flight(store: Path) -> list[tuple[int, str]]:
    conn = sqlite3.connect(store)
    rows = conn.execute(
        "SELECT chat_id, kind, payload FROM outbox WHERE status = 'pending' AND in_flight = 1"
    ).fetchall()
    conn.close()
    return [(chat, json.loads(payload).get("text", kind)) for chat, kind, payload in rows]


def answer_rows(store: Path) -> dict[int, Counter[str]]:
    """Per chat, the outbox rows the bot queued in answer to updates (no order id), by kind."""
    conn = sqlite3.connect(store)
    rows = conn.execute(
        "SELECT chat_id, kind, COUNT(*) FROM outbox WHERE order_id IS NULL GROUP BY chat_id, kind"
    ).fetchall()
    conn.close()
    found: dict[int, Counter[str]] = {}
    for chat, kind, count in rows:
        found.setdefault(chat, Counter())[kind] = count
    return found


def dialogue_states(store: Path) -> dict[int, dict[str, object]]:
    conn = sqlite3.connect(store)
    rows = conn.execute("SELECT chat_id, state FROM chats").fetchall()
    conn.close()
    return {chat: json.loads(state) for chat, state in rows}


def button_steps(store: Path) -> dict[int, list[int]]:
    """Per chat, the step number (`seq`) each question with buttons carries in its callbacks."""
    conn = sqlite3.connect(store)
    rows = conn.execute(
        "SELECT chat_id, payload FROM outbox WHERE kind = 'text' AND order_id IS NULL"
        " AND payload LIKE '%\"keyboard\"%' ORDER BY id"
    ).fetchall()
    conn.close()
    found: dict[int, list[int]] = {}
    for chat, payload in rows:
        data = json.loads(payload)["keyboard"][0][0]["data"]
        found.setdefault(chat, []).append(int(data.split(":", 1)[0]))
    return found


def stored_offset(store: Path) -> tuple[int, set[int]]:
    """(the stored offset, the ids kept as handled at or above it)."""
    conn = sqlite3.connect(store)
    (offset,) = conn.execute("SELECT value FROM kv WHERE key = 'telegram.update_offset'").fetchone()
    done = {u for (u,) in conn.execute("SELECT update_id FROM handled_updates")}
    conn.close()
    return int(offset), done


def outbox_of(store: Path, chat: int) -> list[tuple[str, str, int, int]]:
    """(kind, status, in flight, sends without an answer) of each outbox row of `chat`."""
    conn = sqlite3.connect(store)
    rows = conn.execute(
        "SELECT kind, status, in_flight, unknown_outcomes FROM outbox WHERE chat_id = ?"
        " ORDER BY id",
        (chat,),
    ).fetchall()
    conn.close()
    return rows


def send_burst(api: FakeBotApi, rng: random.Random) -> list[int]:
    """Every chat's messages, chats interleaved at random (each chat's own in order), all
    queued at Telegram at once; returns the update ids."""
    left = {chat: 0 for chat in CHAT_IDS}
    ids = []
    while left:
        chat = rng.choice(sorted(left))
        text = message(chat, left[chat])
        update = api.user_command(chat, text) if text.startswith("/") else api.user_text(chat, text)
        ids.append(int(update["update_id"]))
        left[chat] += 1
        if left[chat] == len(STEPS):
            del left[chat]
    return ids


def wrong_answers(api: FakeBotApi, chat: int) -> list[str]:
    """What is wrong with the chat as the traveller sees it: an answer missing, out of order,
    or not the one the script implies."""
    fresh, _ = split_copies(bot_texts(api, chat))
    sent = [message(chat, i) for i in range(len(STEPS))]
    problems = []
    for i, (_, phrase) in enumerate(STEPS):
        got = fresh[i] if i < len(fresh) else None
        if got is None or phrase not in got:
            problems.append(
                f"chat {chat}: answer {i + 1} to {sent[i]!r} should contain {phrase!r},"
                f" got {got!r} (all: {fresh!r})"
            )
    if len(fresh) > len(STEPS):
        problems.append(f"chat {chat}: more answers than messages: {fresh[len(STEPS) :]!r}")
    return problems


def wrong_records(
    chat: int, rows: Counter[str], state: dict[str, object] | None, buttons: list[int]
) -> list[str]:
    """What is wrong with the chat in the store: an update handled twice adds an answer row
    and moves the dialogue on a step; a lost one leaves both short."""
    problems = []
    # the typed "no" also removes the question's buttons when they were on show by then
    if (
        rows["text"] != len(STEPS)
        or rows["remove_buttons"] > 1
        or set(rows)
        - {
            "text",
            "remove_buttons",
        }
    ):
        problems.append(f"chat {chat}: outbox rows answering updates {dict(rows)}")
    if len(buttons) != 1:
        problems.append(f"chat {chat}: questions with buttons asked at steps {buttons}")
    # one step on from the question whether anyone else travels
    seq = buttons[0] + 1 if buttons else None
    expected = {
        "at": AT,
        "seq": seq,
        "passengers": [passenger(chat).upper()],
        "passengers_done": True,
    }
    found = {key: (state or {}).get(key) for key in expected}
    if found != expected:
        problems.append(f"chat {chat}: dialogue state {found}, expected {expected}")
    return problems


@asynccontextmanager
async def bot_in_sandbox(tmp_path: Path) -> AsyncIterator[Sandbox]:
    async with open_sandbox(tmp_path) as sandbox:
        await sandbox.start_bot(sandbox.config())
        yield sandbox


@pytest.mark.parametrize("seed", [1, 2])
async def test_a_burst_from_200_chats_survives_sigkills(tmp_path: Path, seed: int) -> None:
    """600 updates (200 chats × 3 messages) queued at once; three SIGKILLs at seeded points of
    the progress (while updates are being handled if Telegram still holds some, else while the
    answers go out), each followed by a restart; then a graceful stop. Every message is
    answered, in order; the store holds one answer per message and the dialogue state the
    script implies; the only repeats are sends a kill left in flight, each repeated once."""
    rng = random.Random(seed)
    store = tmp_path / "itinerabot.sqlite3"
    kills: list[Kill] = []
    with trio.fail_after(50):
        async with bot_in_sandbox(tmp_path) as sandbox:
            api = sandbox.api
            update_ids = send_burst(api, rng)
            for _ in range(KILLS):
                kills.append(await kill_at_random_moment(sandbox, rng))
                await sandbox.start_bot()
            summary = f"seed {seed}, kills: " + "; ".join(map(str, kills))
            try:
                await wait_for(lambda: all(answered(api, c) for c in CHAT_IDS), 20, interval=0.25)
            except trio.TooSlowError:
                short = [c for c in CHAT_IDS if not answered(api, c)]
                raise AssertionError(
                    f"{summary}\n{len(short)} chats never got every answer, e.g.\n"
                    + "\n".join(explain_short(api, store, kills, c) for c in short[:3])
                ) from None
            await trio.sleep(0.5)  # a text sent twice would have arrived by now
            code, _ = await sandbox.stop_bot()
    print(summary)
    assert code == 0, sandbox.bot.log[-3000:]
    assert kills[0].unhandled_updates > 0, f"the first kill came after the handling: {summary}"
    # none lost, none handled twice: what each traveller saw, then what the store holds
    rows, states, buttons = answer_rows(store), dialogue_states(store), button_steps(store)
    problems = [p for chat in CHAT_IDS for p in wrong_answers(api, chat)]
    problems += [
        p
        for chat in CHAT_IDS
        for p in wrong_records(
            chat, rows.get(chat, Counter()), states.get(chat), buttons.get(chat, [])
        )
    ]
    assert problems == [], f"{summary}\n" + "\n".join(problems[:20])
    # Telegram was told every update is handled, and the store agrees
    assert api.pending_updates == 0
    # (the stored offset may lag behind: each update stores the offset as it was when its
    # handling began; the updates above it are kept as handled, so a restart skips them)
    offset, done = stored_offset(store)
    assert set(range(offset, max(update_ids) + 1)) <= done, (offset, sorted(done))
    # Repeats: a send in flight at a kill may reach Telegram and go out again on the restart
    # (at least once: Telegram has no idempotency key); nothing else is ever sent twice
    left_in_flight = Counter(row for kill in kills for row in kill.in_flight)
    copies = Counter(
        (chat, text) for chat in CHAT_IDS for text in split_copies(bot_texts(api, chat))[1]
    )
    assert copies - left_in_flight == Counter(), f"{summary}\nrepeats: {copies}"
    print(
        f"seed {seed}: {copies.total()} repeated messages, in chats {sorted(c for c, _ in copies)}"
    )
    assert api.violations == []
    assert 'msg="update handling failed' not in sandbox.log
