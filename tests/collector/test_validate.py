"""Every collector config in collector-config/ is accepted by the real otelcol-audit binary."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from _siem_stack import CONFIG_DIR

pytestmark = pytest.mark.collector

COLLECTOR_CONFIGS = sorted(p for p in CONFIG_DIR.rglob("*.yaml") if p.name != "builder-config.yaml")


def _validate(
    binary: Path, config: Path, tmp_path: Path, **extra: str
) -> subprocess.CompletedProcess[str]:
    token = tmp_path / "gateway.token"
    token.write_text("test-token\n")
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "OTELCOL_AUDIT_STATE_DIR": str(tmp_path / "state"),
        "OTELCOL_AUDIT_GATEWAY_TOKEN_FILE": str(token),
        "SIEM_HEC_TOKEN": "validate-only",
        **extra,
    }
    return subprocess.run(
        [str(binary), "validate", f"--config={config}"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_collector_config_files_exist() -> None:
    """The gateway, agent and HEC stand-in configs are all shipped."""
    names = {p.relative_to(CONFIG_DIR).as_posix() for p in COLLECTOR_CONFIGS}
    assert {"gateway.yaml", "agent.yaml", "test/hec-standin.yaml"} <= names


@pytest.mark.parametrize(
    "config", COLLECTOR_CONFIGS, ids=lambda p: p.relative_to(CONFIG_DIR).as_posix()
)
def test_config_passes_validate(collector_binary: Path, config: Path, tmp_path: Path) -> None:
    """`otelcol-audit validate` accepts the config (OTTL parses, components and keys exist)."""
    result = _validate(collector_binary, config, tmp_path)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(
    "exporters",
    ["[splunk_hec/siem]", "[splunk_hec/siem, elasticsearch/siem]", "[elasticsearch/siem]"],
)
def test_gateway_siem_exporter_choices_validate(
    collector_binary: Path, exporters: str, tmp_path: Path
) -> None:
    """Each documented OTELCOL_AUDIT_SIEM_EXPORTERS value yields a valid gateway."""
    result = _validate(
        collector_binary,
        CONFIG_DIR / "gateway.yaml",
        tmp_path,
        OTELCOL_AUDIT_SIEM_EXPORTERS=exporters,
        OTELCOL_AUDIT_APP_LOG_EXPORTERS="[otlp_http/log-backend]",
    )
    assert result.returncode == 0, result.stderr


def test_validate_rejects_a_broken_ottl_statement(collector_binary: Path, tmp_path: Path) -> None:
    """validate is a real check: a misspelt OTTL function in the gateway fails it."""
    broken = tmp_path / "broken.yaml"
    text = (CONFIG_DIR / "gateway.yaml").read_text()
    assert 'set(log.attributes["event.kind"], "event")' in text
    broken.write_text(
        text.replace('set(log.attributes["event.kind"]', 'sett(log.attributes["event.kind"]')
    )
    result = _validate(collector_binary, broken, tmp_path)
    assert result.returncode != 0
    assert 'undefined function "sett"' in result.stderr


def test_distribution_has_exactly_the_pinned_components(collector_binary: Path) -> None:
    """The build contains exactly the component types the configs and stand-ins use."""
    result = subprocess.run(
        [str(collector_binary), "components"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    names = {
        line.split("name:", 1)[1].strip()
        for line in result.stdout.splitlines()
        if "- name:" in line
    }
    expected = {
        "otlp",
        "splunk_hec",
        "memory_limiter",
        "batch",
        "transform",
        "filter",
        "redaction",
        "attributes",
        "resource",
        "routing",
        "debug",
        "file",
        "otlp_grpc",
        "otlp_http",
        "syslog",
        "elasticsearch",
        "health_check",
        "file_storage",
        "bearertokenauth",
    }
    assert names == expected  # nothing the configs do not use
    assert "v0.145.0" in result.stdout
