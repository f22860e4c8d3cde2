"""Run `itinerabot serve` as a real subprocess and watch its log lines."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import trio
import yaml


def write_config(path: Path, **sections: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(sections))
    return path


class ServeProcess:
    """`python -m itinerabot serve --config FILE`, its stderr collected line by line."""

    def __init__(self, config: Path, env: dict[str, str] | None = None) -> None:
        self.config = config
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("ITINERABOT_")}
        self.env.update(env or {})
        self.lines: list[str] = []
        self.process: trio.Process | None = None
        self._changed = trio.Event()

    async def run(self, *, task_status: trio.TaskStatus[ServeProcess]) -> None:
        self.process = await trio.lowlevel.open_process(
            [sys.executable, "-m", "itinerabot", "serve", "--config", str(self.config)],
            stderr=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            env=self.env,
        )
        task_status.started(self)
        assert self.process.stderr is not None
        buffer = b""
        async for chunk in self.process.stderr:
            buffer += chunk
            *complete, buffer = buffer.split(b"\n")
            self.lines += [c.decode(errors="replace") for c in complete]
            self._changed.set()
            self._changed = trio.Event()
        if buffer:
            self.lines.append(buffer.decode(errors="replace"))
        await self.process.wait()

    async def wait_for_line(self, needle: str, timeout: float = 30) -> str:
        with trio.fail_after(timeout):
            while True:
                for line in self.lines:
                    if needle in line:
                        return line
                if self.process is not None and self.process.returncode is not None:
                    raise AssertionError(f"process exited; log:\n{self.log}")
                await self._changed.wait()

    async def signal(self, signum: int = signal.SIGTERM) -> None:
        assert self.process is not None
        self.process.send_signal(signum)

    async def wait(self, timeout: float = 30) -> int:
        assert self.process is not None
        with trio.fail_after(timeout):
            return await self.process.wait()

    @property
    def log(self) -> str:
        return "\n".join(self.lines)
