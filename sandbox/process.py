"""Run the real `itinerabot serve` as a subprocess and watch its log lines (SANDBOX tooling).

    proc = await nursery.start(ServeProcess(config).run)
    address = await proc.wait_ready()       # "http://127.0.0.1:<port>" from the "ready" line
    proc.signal(signal.SIGTERM); assert await proc.wait() == 0

Used by the demo and by the end-to-end tests; the product never imports it.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any, Literal, Self

import trio
import yaml

__all__ = ["LineProcess", "ServeProcess", "write_config"]

_READY_ADDRESS = re.compile(r"\bready\b.*\baddress=(\S+)")
#: the repository root, so `python -m itinerabot` finds the package from anywhere
_ROOT = Path(__file__).resolve().parents[1]


def write_config(path: Path, **sections: dict[str, Any]) -> Path:
    """Write the YAML config of `sections` (e.g. telegram={...}, circle={...}) to `path`."""
    path.write_text(yaml.safe_dump(sections))
    return path


class LineProcess:
    """A child process whose stdout or stderr is collected line by line as it comes.

    The other stream goes to `other` (a file, or nowhere). If the surrounding scope is
    cancelled first, the process is killed (no orphans).
    """

    def __init__(
        self,
        argv: Sequence[str | Path],
        *,
        read: Literal["stdout", "stderr"] = "stdout",
        other: IO[str] | int = subprocess.DEVNULL,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
    ) -> None:
        self.argv = [str(a) for a in argv]
        self.read = read
        self.other = other
        self.env = env
        self.cwd = cwd
        self.lines: list[str] = []
        self.process: trio.Process | None = None
        self._changed = trio.Event()

    async def run(self, *, task_status: trio.TaskStatus[Self]) -> None:
        """Start the process, report self, collect lines until it exits."""
        pipes: dict[str, Any] = {"stdout": self.other, "stderr": self.other}
        pipes[self.read] = subprocess.PIPE
        self.process = await trio.lowlevel.open_process(
            self.argv, env=self.env, cwd=self.cwd, **pipes
        )
        try:
            task_status.started(self)
            stream = self.process.stderr if self.read == "stderr" else self.process.stdout
            assert stream is not None
            buffer = b""
            async for chunk in stream:
                buffer += chunk
                *complete, buffer = buffer.split(b"\n")
                self.lines += [c.decode(errors="replace") for c in complete]
                self._wake()
            if buffer:
                self.lines.append(buffer.decode(errors="replace"))
            await self.process.wait()
            self._wake()
        finally:
            if self.process.returncode is None:
                self.process.kill()
                with trio.CancelScope(shield=True), trio.move_on_after(5):
                    await self.process.wait()

    def _wake(self) -> None:
        self._changed.set()
        self._changed = trio.Event()

    async def wait_for_line(self, needle: str, timeout: float = 30, *, start: int = 0) -> str:
        """The first line (from index `start`) containing `needle`.

        Raises AssertionError (with the output) if the process exits first, TooSlowError on
        timeout.
        """
        with trio.fail_after(timeout):
            while True:
                for line in self.lines[start:]:
                    if needle in line:
                        return line
                if self.process is not None and self.process.returncode is not None:
                    raise AssertionError(f"{self.argv[1]} exited; output:\n{self.log}")
                await self._changed.wait()

    def signal(self, signum: int = signal.SIGTERM) -> None:
        """Send `signum` (SIGTERM: graceful stop; SIGKILL: a crash)."""
        assert self.process is not None
        self.process.send_signal(signum)

    async def wait(self, timeout: float = 30) -> int:
        """Wait for the exit; returns the exit code (negative: killed by that signal)."""
        assert self.process is not None
        with trio.fail_after(timeout):
            code = await self.process.wait()
        return code

    @property
    def returncode(self) -> int | None:
        return None if self.process is None else self.process.returncode

    @property
    def log(self) -> str:
        return "\n".join(self.lines)


class ServeProcess(LineProcess):
    """`python -m itinerabot serve --config FILE`, its stderr (the log) collected.

    The environment is the caller's minus every `ITINERABOT_*` variable (so a developer's
    secrets never leak into a sandbox run), plus `env`.
    """

    def __init__(self, config: Path, env: dict[str, str] | None = None) -> None:
        clean = {k: v for k, v in os.environ.items() if not k.startswith("ITINERABOT_")}
        super().__init__(
            [sys.executable, "-m", "itinerabot", "serve", "--config", str(config)],
            read="stderr",
            env={**clean, **(env or {})},
            cwd=_ROOT,
        )
        self.config = config
        self.address = ""

    async def wait_ready(self, timeout: float = 30) -> str:
        """Wait for the "ready" log line; returns (and keeps) the web server's address."""
        line = await self.wait_for_line(' msg="ready" ', timeout)
        match = _READY_ADDRESS.search(line)
        if match is None:
            raise AssertionError(f"no address in the ready line: {line!r}")
        self.address = match.group(1).strip('"')
        return self.address
