"""Fixtures of the cache tests; the harness itself is in ``_support.py``."""

from __future__ import annotations

from pathlib import Path

import pytest

from ._support import CacheHarness, make_harness


@pytest.fixture
def harness(tmp_path: Path) -> CacheHarness:
    return make_harness(tmp_path)
