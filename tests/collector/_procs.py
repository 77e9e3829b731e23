"""Process helpers for the collector tests: re-exported from ``examples/_siem_stack.py``.

The helpers live beside the demo (``examples/collector_demo.py`` uses the same ones) and outside the
installed package; this module only puts ``examples/`` on ``sys.path`` and re-exports them.
"""

from __future__ import annotations

import sys
from pathlib import Path

_EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
if str(_EXAMPLES) not in sys.path:
    sys.path.insert(0, str(_EXAMPLES))

from _siem_stack import (  # noqa: E402  # path set just above
    CONFIG_DIR,
    HEC_TOKEN,
    Proc,
    Rsyslog,
    SiemStack,
    StackError,
    build_collector,
    find_rsyslogd,
    free_port,
    go_available,
    http_status,
    http_text,
    metric_sum,
    otlp_json_records,
    read_text,
    running_stack,
    syslog_messages,
    wait_for,
)

__all__ = [
    "CONFIG_DIR",
    "HEC_TOKEN",
    "Proc",
    "Rsyslog",
    "SiemStack",
    "StackError",
    "build_collector",
    "find_rsyslogd",
    "free_port",
    "go_available",
    "http_status",
    "http_text",
    "metric_sum",
    "otlp_json_records",
    "read_text",
    "running_stack",
    "syslog_messages",
    "wait_for",
]
