"""Run ``joulegate`` as a person at a terminal: a real process on a real pseudo-terminal.

A table's layout depends on whether stdout is a terminal and how wide it is, so the only
honest test of "fits 80 columns" is a terminal that is 80 columns wide.
"""

from __future__ import annotations

import fcntl
import os
import pty
import re
import struct
import subprocess
import sys
import termios

_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07")
# Variables that would override the terminal's own answer about colour or width.
_OVERRIDES = ("COLUMNS", "LINES", "FORCE_COLOR", "NO_COLOR", "TTY_COMPATIBLE", "TERM")


def run_in_terminal(
    *args: str, columns: int = 80, env: dict[str, str] | None = None, timeout: float = 120
) -> tuple[int, str]:
    """``joulegate *args`` with stdout and stderr on a ``columns``-wide terminal; returns its
    exit status and what the terminal showed, colour codes removed."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
    environ = {k: v for k, v in os.environ.items() if k not in _OVERRIDES}
    environ.update({"TERM": "xterm-256color", **(env or {})})
    proc = subprocess.Popen(
        [sys.executable, "-m", "joulegate.cli", *args],
        stdin=subprocess.DEVNULL,
        stdout=slave,
        stderr=slave,
        env=environ,
    )
    os.close(slave)
    chunks = []
    try:
        while True:
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: the process closed the terminal
                break
            if not data:
                break
            chunks.append(data)
        rc = proc.wait(timeout)
    finally:
        os.close(master)
        if proc.poll() is None:
            proc.kill()
    text = b"".join(chunks).decode("utf-8", "replace").replace("\r\n", "\n")
    return rc, _ANSI.sub("", text)
