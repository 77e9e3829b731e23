"""Zero-code start: `opentelemetry-instrument python app.py` with environment variables only."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from helpers.otlp_receiver import OTLPHttpReceiver
from otel_audit import semconv

APP = textwrap.dedent(
    """
    import logging
    from opentelemetry import trace
    import otel_audit

    tracer = trace.get_tracer("app")
    with tracer.start_as_current_span("handle") as span:
        ctx = span.get_span_context()
        print(f"TRACE {ctx.trace_id:032x}", flush=True)
        logging.getLogger("security").warning(
            "login failed", extra={"otel.event.name": "authentication.failure", "user.name": "bob"}
        )
        otel_audit.security_event("authorization.denied", actor="bob", target="/admin")
        logging.getLogger("app").warning("ordinary warning")
    """
)


def _instrument_cmd() -> str:
    found = shutil.which("opentelemetry-instrument", path=str(Path(sys.executable).parent))
    if found is None:
        pytest.fail("opentelemetry-instrument is not installed next to the test interpreter")
    return found


def _run(tmp_path: Path, env_extra: dict[str, str]) -> subprocess.CompletedProcess[str]:
    app = tmp_path / "app.py"
    app.write_text(APP)
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        "OTEL_SERVICE_NAME": "zero-code-app",
        "OTEL_TRACES_EXPORTER": "none",
        "OTEL_METRICS_EXPORTER": "none",
        "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
        "OTEL_BLRP_SCHEDULE_DELAY": "50",
        "OTEL_PYTHON_AUDIT_DELIVERY": "batch",
        "OTEL_PYTHON_AUDIT_REDACTION": "off",
        "OTEL_PYTHON_AUDIT_REDACTION_ALLOW_OFF": "true",
        **env_extra,
    }
    return subprocess.run(
        [_instrument_cmd(), sys.executable, str(app)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


class TestZeroCode:
    def test_instrumented_app_gets_the_audit_pipeline(self, tmp_path):
        """Security events are tagged, traced and exported with no code change."""
        with OTLPHttpReceiver() as receiver:
            result = _run(tmp_path, {"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint})
            assert result.returncode == 0, result.stderr
            received = receiver.wait_for(3)
        trace_id = next(
            line.split()[1] for line in result.stdout.splitlines() if line.startswith("TRACE")
        )
        by_name = {r.event_name: r for r in received}
        assert set(by_name) >= {"authentication.failure", "authorization.denied"}
        for name in ("authentication.failure", "authorization.denied"):
            record = by_name[name]
            assert record.attributes[semconv.AUDIT_EVENT_NAME] == name
            assert record.trace_id == trace_id
            assert record.resource["service.name"] == "zero-code-app"
        ordinary = [r for r in received if r.body == "ordinary warning"]
        assert len(ordinary) == 1, "each record exactly once (no duplicate handler)"
        assert len(received) == 3

    def test_bad_setting_is_reported_on_stderr(self, tmp_path):
        """opentelemetry-instrument swallows hook errors, so ours is also written to stderr."""
        result = _run(
            tmp_path,
            {
                "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9",
                "OTEL_PYTHON_AUDIT_OVERFLOW": "explode",
            },
        )
        assert "OTEL_PYTHON_AUDIT_OVERFLOW='explode'" in result.stderr
        assert "block, drop" in result.stderr
