"""Stopping a private service: politely, then for sure."""

from __future__ import annotations

import subprocess

from drivers.simtools import free_port

__all__ = ["free_port", "stop_process"]


def stop_process(proc: subprocess.Popen[bytes] | None, timeout_s: float = 10.0) -> None:
    """SIGTERM, wait up to ``timeout_s``, then SIGKILL; reaps the process either way."""
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
