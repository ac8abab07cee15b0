"""Crash safety: every row whose ``record()`` returned survives a ``kill -9`` of the writer."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import sqlalchemy as sa

WRITER = textwrap.dedent(
    """
    import asyncio, sys
    from tests_support import make_record
    from joulegate.ledger import Ledger

    async def main(url):
        ledger = Ledger(url)
        await ledger.start()
        async def one():
            rec = make_record()
            await ledger.record(rec)
            print(rec.request_id, flush=True)  # acknowledged only after the commit
        while True:
            await asyncio.gather(*(one() for _ in range(20)))

    asyncio.run(main(sys.argv[1]))
    """
)


def test_acknowledged_rows_survive_kill_9(ledger_url: str, tmp_path: Path) -> None:
    # The child imports the same record factory the tests use, under a neutral name.
    shutil.copy(Path(__file__).with_name("_support.py"), tmp_path / "tests_support.py")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), *sys.path])}
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, ledger_url],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    acked: list[str] = []
    try:
        assert proc.stdout is not None
        while len(acked) < 300:
            line = proc.stdout.readline()
            if not line:
                err = proc.stderr.read() if proc.stderr else ""
                raise AssertionError(f"writer died early: {err}")
            acked.append(line.strip())
        os.kill(proc.pid, signal.SIGKILL)  # mid-stream: more rows are queued and in flight
    finally:
        proc.kill()
        proc.wait(timeout=10)

    engine = sa.create_engine(ledger_url)
    try:
        with engine.connect() as conn:
            stored = set(conn.execute(sa.text("select request_id from requests")).scalars())
    finally:
        engine.dispose()
    missing = [rid for rid in acked if rid not in stored]
    assert missing == [], f"{len(missing)} acknowledged rows lost after kill -9"
