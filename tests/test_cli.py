"""The command line as a user meets it: one clear line per problem, never a traceback."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from itinerabot.store.schema import MIGRATIONS

#: every test here runs `python -m itinerabot` in a child process
pytestmark = pytest.mark.process

EXAMPLE = Path(__file__).resolve().parents[1] / "config.example.yaml"


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("ITINERABOT_")}
    return subprocess.run(
        [sys.executable, "-m", "itinerabot", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**base, **(env or {})},
    )


def test_example_config_is_valid_once_filled_in(tmp_path: Path) -> None:
    filled = tmp_path / "config.yaml"
    text = EXAMPLE.read_text().replace("REPLACE-with-the-token-from-BotFather", "A" * 35)
    text = text.replace("REPLACE with an e-mail address, a @username or a URL", "a@b.example")
    filled.write_text(text.replace("REPLACE", "filled"))
    r = run_cli("check-config", str(filled))
    assert r.returncode == 0, r.stderr
    assert "OK" in r.stdout


def test_bad_config_lists_each_problem(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "telegram:\n  token: nope\n  long_poll_timeout: 90\nserver:\n  port: 70000\n"
        "  colour: blue\nstripe:\n  secret_key: sk_test_x\n"
    )
    r = run_cli("check-config", str(bad))
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert any(line.startswith("config error: telegram.token:") for line in lines)
    assert any("telegram.long_poll_timeout" in line and "50" in line for line in lines)
    assert any("server.port" in line for line in lines)
    assert any("server.colour: is not a known setting" in line for line in lines)
    assert any("stripe" in line and "ITINERABOT_STRIPE_WEBHOOK_SECRET" in line for line in lines)
    assert "Traceback" not in r.stderr


@pytest.mark.parametrize("command", ["check-config", "serve"])
def test_missing_file(tmp_path: Path, command: str) -> None:
    path = str(tmp_path / "absent.yaml")
    args = [command, path] if command == "check-config" else [command, "--config", path]
    r = run_cli(*args)
    assert r.returncode == 2
    assert r.stderr.strip() == f"config error: {path}: no such file"


def test_missing_token_names_the_environment_variable(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("stripe:\n  secret_key: sk_test_x\n  webhook_secret: whsec_x\n")
    r = run_cli("serve", "--config", str(cfg))
    assert r.returncode == 2
    assert r.stderr.strip() == (
        "config error: telegram.token: is required (in the file or as $ITINERABOT_TELEGRAM_TOKEN)"
    )


def test_secrets_from_the_environment(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("telegram: {}\nstripe: {}\ncircle:\n  enabled: false\n")
    env = {
        "ITINERABOT_TELEGRAM_TOKEN": "123:" + "a" * 30,
        "ITINERABOT_STRIPE_SECRET_KEY": "sk_test_env",
        "ITINERABOT_STRIPE_WEBHOOK_SECRET": "whsec_env",
    }
    assert run_cli("check-config", str(cfg), env=env).returncode == 0


def test_not_yaml(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("telegram: [unclosed\n")
    r = run_cli("check-config", str(cfg))
    assert r.returncode == 2
    assert "is not valid YAML" in r.stderr and "Traceback" not in r.stderr


def test_help_lists_the_commands() -> None:
    r = run_cli("--help")
    assert r.returncode == 0
    for command in ("serve", "check-config", "render", "circle", "orders"):
        assert command in r.stdout


def test_orders_help_lists_its_tasks() -> None:
    r = run_cli("orders", "--help")
    assert r.returncode == 0
    assert "--json" in r.stdout
    for task in ("show", "resend", "refund"):
        assert task in r.stdout
    r = run_cli("orders", "refund", "--help")
    for option in ("--extra", "--payment", "--amount", "--address", "--chain", "--yes"):
        assert option in r.stdout


def test_orders_without_a_store_is_one_line_in_a_real_process(tmp_path: Path) -> None:
    """The operator's first run, before serve ever created the store."""
    cfg = tmp_path / "c.yaml"
    store = tmp_path / "absent.sqlite3"
    cfg.write_text(
        f"telegram: {{token: '123:{'a' * 30}'}}\n"
        "stripe: {secret_key: sk_test_x, webhook_secret: whsec_x}\n"
        f"store: {{path: '{store}'}}\n"
    )
    r = run_cli("orders", "--config", str(cfg))
    assert (r.returncode, r.stdout) == (1, "")
    assert r.stderr == f"no store at {store}: check store.path in the config, or start serve once\n"
    assert not store.exists()


def test_render_of_an_order_leaves_an_older_store_as_it_is(tmp_path: Path) -> None:
    """Finding 4: `render --order` migrated the store a running serve of another version
    uses; it reads it read-only and refuses a schema that is not its own."""
    cfg = tmp_path / "c.yaml"
    store = tmp_path / "old.sqlite3"
    conn = sqlite3.connect(store, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.executescript(MIGRATIONS[0])
    conn.execute("PRAGMA user_version = 1")
    conn.close()
    before = store.read_bytes()
    cfg.write_text(
        f"telegram: {{token: '123:{'a' * 30}'}}\n"
        "stripe: {secret_key: sk_test_x, webhook_secret: whsec_x}\n"
        f"store: {{path: '{store}'}}\n"
    )
    r = run_cli(
        "render", "--order", "IB-7K3Q9P", "--config", str(cfg), "--out", str(tmp_path / "x.pdf")
    )
    assert (r.returncode, r.stdout) == (1, "")
    assert r.stderr == (
        f"store error: the store has schema version 1 and this program knows {len(MIGRATIONS)}:"
        " run this version's `itinerabot serve` once to migrate it (or use the matching"
        " itinerabot)\n"
    )
    assert store.read_bytes() == before


def test_render_sample(tmp_path: Path) -> None:
    out = tmp_path / "sample.pdf"
    r = run_cli("render", "--sample", "--out", str(out), "--page-size", "Letter")
    assert r.returncode == 0, r.stderr
    assert out.read_bytes().startswith(b"%PDF")


def test_secrets_lose_a_trailing_newline_and_refuse_inner_spaces(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("telegram: {}\nstripe:\n  enabled: false\ncircle: {}\n")
    ok = {
        "ITINERABOT_TELEGRAM_TOKEN": "123:" + "a" * 30 + "\n",
        "ITINERABOT_CIRCLE_API_KEY": "SAND_API_KEY:abc:def\n",
    }
    assert run_cli("check-config", str(cfg), env=ok).returncode == 0
    bad = dict(ok, ITINERABOT_CIRCLE_API_KEY="SAND_API_KEY abc")
    r = run_cli("check-config", str(cfg), env=bad)
    assert r.returncode == 2
    assert "circle.api_key: must be one word" in r.stderr
    assert "SAND_API_KEY abc" not in r.stderr


@pytest.mark.parametrize("command", ["check-config", "serve"])
def test_the_example_unchanged_lists_every_placeholder_still_to_fill_in(command: str) -> None:
    args = [command, str(EXAMPLE)] if command == "check-config" else [command, "-c", str(EXAMPLE)]
    r = run_cli(*args)
    assert r.returncode == 2
    assert r.stderr.splitlines() == [
        f"config error: {key}: still holds the example's placeholder; fill it in{env}"
        for key, env in [
            ("telegram.token", " (or set $ITINERABOT_TELEGRAM_TOKEN)"),
            ("stripe.secret_key", " (or set $ITINERABOT_STRIPE_SECRET_KEY)"),
            ("stripe.webhook_secret", " (or set $ITINERABOT_STRIPE_WEBHOOK_SECRET)"),
            ("circle.api_key", " (or set $ITINERABOT_CIRCLE_API_KEY)"),
            ("shop.support_contact", ""),
        ]
    ]
    assert r.stdout == ""


def test_a_secret_from_the_environment_fills_its_placeholder(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(
        EXAMPLE.read_text()
        .replace("REPLACE with an e-mail address, a @username or a URL", "a@b.example")
        # the first section with `enabled` is stripe's: switched off, its values are not used
        .replace("enabled: true", "enabled: false", 1)
    )
    r = run_cli(
        "check-config",
        str(config),
        env={
            "ITINERABOT_TELEGRAM_TOKEN": "123456789:" + "B" * 35,
            "ITINERABOT_CIRCLE_API_KEY": "SAND_API_KEY:abc:def",
        },
    )
    assert r.returncode == 0, r.stderr


def test_demo_without_the_sandbox_says_where_to_run_it(tmp_path: Path) -> None:
    """An installed itinerabot (a wheel, the container) has the package but no sandbox/."""
    import shutil

    import itinerabot

    shutil.copytree(Path(itinerabot.__file__).parent, tmp_path / "itinerabot")
    base = {k: v for k, v in os.environ.items() if not k.startswith("ITINERABOT_")}
    r = subprocess.run(
        [sys.executable, "-m", "itinerabot", "demo"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env={**base, "PYTHONPATH": str(tmp_path)},
    )
    assert r.returncode == 1
    assert "make demo" in r.stderr and "sandbox/" in r.stderr
    assert "Traceback" not in r.stderr
