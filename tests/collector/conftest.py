"""
Fixtures for the collector tests: the built otelcol-audit binary and rsyslogd.

The process helpers live in ``examples/_siem_stack.py`` (the demo uses the same ones) and
outside the installed package; this conftest puts ``examples/`` on ``sys.path`` so the test
modules import them as ``_siem_stack``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

_ROOT = Path(__file__).resolve().parents[2]
if str(_ROOT / "examples") not in sys.path:
    sys.path.insert(0, str(_ROOT / "examples"))

from _siem_stack import Rsyslog, build_collector, find_rsyslogd, go_available  # noqa: E402

_CACHED = _ROOT / ".cache" / "otelcol" / "dist" / "otelcol-audit"


@pytest.fixture(scope="session")
def collector_binary() -> Path:
    """The otelcol-audit binary (built once by scripts/build-collector.sh, then cached)."""
    if not go_available():
        if _CACHED.is_file():
            return _CACHED
        pytest.skip("Go toolchain not on PATH: cannot build the otelcol-audit collector")
    return build_collector()


@pytest.fixture(scope="session")
def rsyslog() -> Rsyslog:
    """rsyslogd unpacked by scripts/install-siem-deps.sh (installed on first use)."""
    found = find_rsyslogd()
    if found is None:
        pytest.fail("rsyslogd not available: run scripts/install-siem-deps.sh (needs apt)")
    return found
