"""Dashboard session values and rate-limit header formats, without a server."""

from __future__ import annotations

import stat
import threading
from pathlib import Path

import pytest

from joulegate.server.ratelimit import estimate_tokens, openai_duration
from joulegate.server.sessions import SECRET_FILE, Session, SessionSigner


def test_a_session_names_its_key_and_issue_time_until_it_expires(tmp_path: Path) -> None:
    signer = SessionSigner(None, ttl_s=60, data_dir=tmp_path)
    value = signer.issue("0123456789ab", now=1_000.25)
    assert signer.verify(value, now=1_059) == Session("0123456789ab", 1_000_250)
    assert signer.verify(value, now=1_060) is None  # expired
    key_id, issued, expires, sig = value.split(".")
    assert signer.verify(f"ffffffffffff.{issued}.{expires}.{sig}", now=1_000) is None
    assert signer.verify(f"{key_id}.{issued}.{int(expires) + 3600}.{sig}", now=1_000) is None
    assert signer.verify(f"{key_id}.{int(issued) + 5000}.{expires}.{sig}", now=1_000) is None
    assert signer.verify(f"{key_id}.{expires}.{sig}", now=1_000) is None  # the old format
    assert signer.verify("garbage", now=1_000) is None
    assert SessionSigner(b"another secret", ttl_s=60).verify(value, now=1_000) is None


def test_the_install_secret_is_made_once_private_and_shared_by_processes(
    tmp_path: Path,
) -> None:
    signers = [SessionSigner(None, ttl_s=60, data_dir=tmp_path) for _ in range(8)]
    secrets: list[bytes] = []
    threads = [threading.Thread(target=lambda s=s: secrets.append(s.secret)) for s in signers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(secrets)) == 1 and len(secrets[0]) == 32
    mode = stat.S_IMODE((tmp_path / SECRET_FILE).stat().st_mode)
    assert mode == 0o600
    # A restart reads the same secret: sessions survive it.
    value = signers[0].issue("k", now=0)
    assert SessionSigner(None, ttl_s=60, data_dir=tmp_path).verify(value, now=1) == Session("k", 0)


def test_a_signer_needs_somewhere_to_keep_its_secret() -> None:
    with pytest.raises(ValueError):
        SessionSigner(None, ttl_s=60)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0ms"),
        (0.0201, "21ms"),
        (1, "1s"),
        (59.812, "59.812s"),
        (360, "6m0s"),
        (3723.5, "1h2m3.5s"),
    ],
)
def test_reset_times_read_as_openai_writes_them(seconds: float, text: str) -> None:
    assert openai_duration(seconds) == text


def test_a_request_is_charged_its_prompt_estimate_and_all_its_max_tokens() -> None:
    messages = [
        {"role": "system", "content": "x" * 40},
        {"role": "user", "content": [{"type": "text", "text": "y" * 8}]},
    ]
    assert estimate_tokens(messages, 100) == 10 + 2 + 2 * 4 + 100
