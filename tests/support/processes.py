"""Stopping the server processes that tests and benchmarks start in their own groups."""

from __future__ import annotations

import os
import signal
import subprocess


def _signal_group(process: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(process.pid, sig)
    except ProcessLookupError:
        pass


def stop_groups(processes, *, grace: float = 10) -> None:
    """SIGTERM each process group (gunicorn's workers too) at once, SIGKILL what is left
    after ``grace`` seconds."""
    processes = list(processes)
    for process in processes:
        if process.poll() is None:
            _signal_group(process, signal.SIGTERM)
    for process in processes:
        try:
            process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            _signal_group(process, signal.SIGKILL)
            process.wait(timeout=grace)
