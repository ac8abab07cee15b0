"""llama.cpp's log lines, sent to Python logging instead of the terminal.

llama.cpp logs through one process-wide callback. llama-cpp-python's, even with
``verbose=False``, prints every line llama.cpp files as an error to stderr, and llama.cpp
files harmless notices there: loading Gemma 3 prints "using full-size SWA cache" on every
``joulegate chat``. Real failures reach us as exceptions anyway, so every line goes to this
module's logger at DEBUG, where ``logging`` configuration can still show it.
"""

from __future__ import annotations

import ctypes
import logging
import threading
from typing import Any

log = logging.getLogger(__name__)

_lock = threading.Lock()
_installed: list[Any] = []  # the ctypes callback must outlive every call llama.cpp makes


def route_llama_logs() -> None:
    """Install the callback once per process (idempotent, thread-safe)."""
    with _lock:
        if _installed:
            return
        import llama_cpp

        @llama_cpp.llama_log_callback
        def forward(level: int, text: bytes, user_data: ctypes.c_void_p) -> None:
            if log.isEnabledFor(logging.DEBUG):
                log.debug("llama.cpp[%d]: %s", level, text.decode("utf-8", "replace").rstrip())

        llama_cpp.llama_log_set(forward, ctypes.c_void_p(0))
        _installed.append(forward)
