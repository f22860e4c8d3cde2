"""Moved to `sandbox.process` (the demo and the end-to-end tests share it); re-exported here."""

from __future__ import annotations

from sandbox.process import ServeProcess, write_config

__all__ = ["ServeProcess", "write_config"]
