"""Shared fixtures: every test starts without an otel-audit pipeline and leaves none."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

import otel_audit


@pytest.fixture(autouse=True)
def _reset_otel_audit() -> Iterator[None]:
    otel_audit.shutdown()
    yield
    otel_audit.shutdown()
