"""Signed, expiring dashboard sessions: what a browser holds after signing in with a key.

The cookie carries ``<key_id>.<issued ms>.<expiry s>.<HMAC-SHA256>``, nothing secret: the key
itself never leaves the login form. Sessions are stateless, so any replica sharing the
secret accepts them; the key behind one is read again on every request, so revoking it (or
taking its admin role away) ends its sessions at once, and so does signing out: it sets the
key's ``sessions_after``, which voids every session issued before it, copies included.

The secret is ``[server] session_secret`` or, by default, 32 random bytes generated once into
``<data_dir>/session-secret`` (mode 0600): a restart keeps everyone signed in, a new install
signs everyone out.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
import threading
import time
from dataclasses import dataclass
from pathlib import Path

__all__ = ["COOKIE", "Session", "SessionSigner"]

COOKIE = "joulegate_session"
SECRET_FILE = "session-secret"


@dataclass(frozen=True)
class Session:
    """What a valid session value says: whose it is, and when it was issued (Unix ms)."""

    key_id: str
    issued_ms: int


class SessionSigner:
    def __init__(self, secret: bytes | None, ttl_s: int, data_dir: Path | None = None) -> None:
        if secret is None and data_dir is None:
            raise ValueError("a session secret or a data dir to keep one in is needed")
        self._secret = secret
        self._data_dir = data_dir
        self._lock = threading.Lock()
        self.ttl_s = ttl_s

    @property
    def secret(self) -> bytes:
        if self._secret is None:
            with self._lock:
                if self._secret is None:
                    assert self._data_dir is not None
                    self._secret = _load_or_create(self._data_dir / SECRET_FILE)
        return self._secret

    def issue(self, key_id: str, now: float | None = None) -> str:
        at = time.time() if now is None else now
        payload = f"{key_id}.{int(at * 1000)}.{int(at + self.ttl_s)}"
        return f"{payload}.{self._sign(payload)}"

    def verify(self, value: str, now: float | None = None) -> Session | None:
        """The session a valid, unexpired value holds; ``None`` otherwise."""
        try:
            key_id, issued, expires, signature = value.split(".")
            born, deadline = int(issued), int(expires)
        except ValueError:
            return None
        if not hmac.compare_digest(signature, self._sign(f"{key_id}.{issued}.{expires}")):
            return None
        if deadline <= (time.time() if now is None else now):
            return None
        return Session(key_id, born)

    def _sign(self, payload: str) -> str:
        mac = hmac.new(self.secret, payload.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()


def _load_or_create(path: Path) -> bytes:
    """Read the install's secret, creating it first if this is the first start. Two
    processes starting together agree: only one ``O_EXCL`` create can win."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        for _ in range(50):  # the winner may not have written it yet
            text = path.read_text().strip()
            if text:
                return bytes.fromhex(text)
            time.sleep(0.01)
        raise RuntimeError(f"{path} is empty; delete it to make a new one") from None
    with os.fdopen(fd, "w") as f:
        f.write(secrets.token_hex(32))
    return bytes.fromhex(path.read_text().strip())
