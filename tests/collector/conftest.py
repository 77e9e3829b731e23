"""Fixtures for the collector tests: the built otelcol-audit binary and rsyslogd."""

from __future__ import annotations

from pathlib import Path

import pytest
from _procs import Rsyslog, build_collector, find_rsyslogd, go_available

_CACHED = Path(__file__).resolve().parents[2] / ".cache" / "otelcol" / "dist" / "otelcol-audit"


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
