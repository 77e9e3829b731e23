"""OTEL_PYTHON_AUDIT_* parsing: defaults, precedence and clear errors for bad values."""

from __future__ import annotations

import ipaddress
import subprocess
import sys
from pathlib import Path

import pytest

from otel_audit import ConfigurationError, load_settings
from otel_audit._settings import KNOWN_VARIABLES

BAD_VALUES = {
    "OTEL_PYTHON_AUDIT_ENABLED": ("maybe", "true, false"),
    "OTEL_PYTHON_AUDIT_SECURITY_LOGGERS": (" , ", "comma-separated list"),
    "OTEL_PYTHON_AUDIT_REDACTION": ("strickt", "off, standard, strict"),
    "OTEL_PYTHON_AUDIT_REDACTION_ALLOW_OFF": ("sure", "true, false"),
    "OTEL_PYTHON_AUDIT_REDACTION_SCOPE": ("some", "all, security"),
    "OTEL_PYTHON_AUDIT_REDACTION_TIER2": ("spacy", "off, presidio, presidio-ner"),
    "OTEL_PYTHON_AUDIT_SPACY_MODEL": ("../evil", "spaCy pipeline"),
    "OTEL_PYTHON_AUDIT_MASK_CLIENT_IP": ("2", "true, false"),
    "OTEL_PYTHON_AUDIT_HMAC_KEY": ("short", "at least 16 bytes"),
    "OTEL_PYTHON_AUDIT_HMAC_KEY_ID": ("has space", "1 to 32 characters"),
    "OTEL_PYTHON_AUDIT_DELIVERY": ("kafka", "durable, batch"),
    "OTEL_PYTHON_AUDIT_SPOOL_DIR": ("/var/\0spool", "a directory path"),
    "OTEL_PYTHON_AUDIT_SPOOL_MAX_BYTES": ("10", "an integer >= 1048576"),
    "OTEL_PYTHON_AUDIT_QUEUE_SIZE": ("0", "an integer from 1"),
    "OTEL_PYTHON_AUDIT_OVERFLOW": ("explode", "block, drop"),
    "OTEL_PYTHON_AUDIT_BLOCK_TIMEOUT_MS": ("-1", "an integer from 0"),
    "OTEL_PYTHON_AUDIT_LAST_RESORT": ("\0", "stderr or a file path"),
    "OTEL_PYTHON_AUDIT_INTEGRITY": ("yesplease", "true, false"),
    "OTEL_PYTHON_AUDIT_CHECKPOINT_INTERVAL": ("ten", "an integer >= 0"),
    "OTEL_PYTHON_AUDIT_TRUSTED_PROXIES": ("10.0.0.0/33", "CIDR"),
    "OTEL_PYTHON_AUDIT_REQUEST_ID_HEADER": ("X Request", "HTTP header name"),
    "OTEL_PYTHON_AUDIT_HTTP_EVENTS": ("denied,teapot", "denied, rate_limited, server_error, none"),
    "OTEL_PYTHON_AUDIT_SENSITIVE_ROUTES": (",", "comma-separated list"),
    "OTEL_PYTHON_AUDIT_DETECTIONS": ("on-ish", "true, false"),
    "OTEL_PYTHON_AUDIT_DEFER_EVENTS": ("later", "true, false"),
    "OTEL_PYTHON_AUDIT_BRUTE_FORCE_THRESHOLD": ("0", "an integer >= 1"),
    "OTEL_PYTHON_AUDIT_STUFFING_THRESHOLD": ("1", "an integer >= 2"),
    "OTEL_PYTHON_AUDIT_DETECTION_WINDOW_S": ("-5", "seconds > 0"),
    "OTEL_PYTHON_AUDIT_EXPORT_THRESHOLD": ("many", "an integer >= 1"),
    "OTEL_PYTHON_AUDIT_ADMIN_ROLES": (",,", "comma-separated list"),
}


class TestLoadSettings:
    def test_defaults(self):
        """With nothing set, settings are the documented safe defaults."""
        settings = load_settings({})
        assert settings.redaction == "standard"
        assert settings.redaction_scope == "all"
        assert settings.delivery == "durable"
        assert settings.security_loggers == ("security",)
        assert settings.mask_client_ip is False

    def test_every_variable_has_a_bad_value_case(self):
        """The table below covers every variable the package reads."""
        assert set(BAD_VALUES) == set(KNOWN_VARIABLES)

    @pytest.mark.parametrize(("variable", "case"), sorted(BAD_VALUES.items()))
    def test_bad_value_names_variable_and_accepted_values(self, variable, case):
        """A bad value fails with the variable's name and what is accepted."""
        raw, accepted = case
        with pytest.raises(ConfigurationError) as info:
            load_settings({variable: raw})
        message = str(info.value)
        assert variable in message
        assert "accepted values" in message
        assert accepted in message

    def test_hmac_key_is_never_echoed(self):
        """A rejected key does not appear in the error message."""
        with pytest.raises(ConfigurationError) as info:
            load_settings({"OTEL_PYTHON_AUDIT_HMAC_KEY": "tiny-secret"})
        assert "tiny-secret" not in str(info.value)

    @pytest.mark.parametrize("variable", sorted(KNOWN_VARIABLES))
    def test_empty_means_unset(self, variable):
        """An empty value is treated as unset, as in the rest of OpenTelemetry."""
        assert load_settings({variable: ""}) == load_settings({})

    def test_unknown_prefixed_variable_is_an_error(self):
        """A misspelt OTEL_PYTHON_AUDIT_ variable fails instead of being ignored, value hidden."""
        with pytest.raises(ConfigurationError, match="OTEL_PYTHON_AUDIT_HMAC_KY") as info:
            load_settings({"OTEL_PYTHON_AUDIT_HMAC_KY": "s3cret-key-material-123"})
        assert "s3cret" not in str(info.value)

    def test_off_needs_second_key(self):
        """Redaction can only be switched off together with the ALLOW_OFF variable."""
        with pytest.raises(ConfigurationError, match="ALLOW_OFF"):
            load_settings({"OTEL_PYTHON_AUDIT_REDACTION": "off"})
        settings = load_settings(
            {"OTEL_PYTHON_AUDIT_REDACTION": "off", "OTEL_PYTHON_AUDIT_REDACTION_ALLOW_OFF": "true"}
        )
        assert settings.redaction == "off"

    def test_override_beats_environment(self):
        """Keyword overrides take precedence over the environment."""
        settings = load_settings({"OTEL_PYTHON_AUDIT_DELIVERY": "durable"}, delivery="batch")
        assert settings.delivery == "batch"

    def test_unknown_override_is_a_type_error(self):
        """A misspelt keyword override fails loudly."""
        with pytest.raises(TypeError, match="redactoin"):
            load_settings({}, redactoin="strict")

    def test_values_are_parsed(self):
        """Lists, CIDRs, keys and numbers come out typed."""
        settings = load_settings(
            {
                "OTEL_PYTHON_AUDIT_SECURITY_LOGGERS": "security, audit.trail",
                "OTEL_PYTHON_AUDIT_TRUSTED_PROXIES": "10.0.0.0/8, ::1",
                "OTEL_PYTHON_AUDIT_HMAC_KEY": "hex:" + "ab" * 16,
                "OTEL_PYTHON_AUDIT_HTTP_EVENTS": "none",
                "OTEL_PYTHON_AUDIT_SPOOL_MAX_BYTES": "2_000_000",
            }
        )
        assert settings.security_loggers == ("security", "audit.trail")
        assert ipaddress.ip_network("10.0.0.0/8") in settings.trusted_proxies
        assert settings.hmac_key == bytes.fromhex("ab" * 16)
        assert settings.http_events == frozenset()
        assert settings.spool_max_bytes == 2_000_000
        assert "ab" * 16 not in repr(settings)

    def test_default_spool_dir_is_per_service(self, tmp_path: Path):
        """The default spool lives under XDG_STATE_HOME, one directory per service."""
        settings = load_settings({})
        path = settings.resolved_spool_dir(
            {"XDG_STATE_HOME": str(tmp_path), "OTEL_SERVICE_NAME": "pay/ments"}
        )
        assert path == tmp_path / "otel-audit" / "pay_ments"


def check_config(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run `otel-audit check-config` with exactly ``env`` (plus PATH)."""
    return subprocess.run(
        [sys.executable, "-m", "otel_audit", "check-config"],
        env={"PATH": "/usr/bin:/bin", **env},
        capture_output=True,
        text=True,
        check=False,
    )


class TestCheckConfigCommand:
    @pytest.mark.parametrize(
        ("env", "expected"),
        [
            ({"OTEL_PYTHON_AUDIT_OVERFLOW": "explode"}, "OTEL_PYTHON_AUDIT_OVERFLOW='explode'"),
            ({"OTEL_LOGS_EXPORTER": "otlp,kafka"}, "OTEL_LOGS_EXPORTER='otlp,kafka'"),
        ],
    )
    def test_reports_bad_variable(self, env, expected):
        """check-config exits 2 and names the bad variable and accepted values on stderr."""
        result = check_config(env)
        assert result.returncode == 2
        assert expected in result.stderr
        assert "accepted values:" in result.stderr

    def test_ok(self):
        """A clean environment passes and hides the key."""
        result = check_config({"OTEL_PYTHON_AUDIT_HMAC_KEY": "x" * 32})
        assert result.returncode == 0, result.stderr
        assert "x" * 32 not in result.stdout
        assert "hmac_key = <set>" in result.stdout

    def test_says_how_the_prefilter_runs(self):
        """Operators can see whether tier 1 gives up the GIL on every record."""
        from otel_audit.redaction import RedactionEngine  # noqa: PLC0415

        engine = RedactionEngine()
        result = check_config({})
        assert result.returncode == 0, result.stderr
        line = next(x for x in result.stdout.splitlines() if x.startswith("tier-1 prefilter:"))
        assert line.startswith(f"tier-1 prefilter: {engine.backend}")
        if engine.backend == "re2":
            holds = "keeps the GIL" if engine.prefilter_holds_gil else "releases the GIL"
            assert holds in line
        off = check_config(
            {"OTEL_PYTHON_AUDIT_REDACTION": "off", "OTEL_PYTHON_AUDIT_REDACTION_ALLOW_OFF": "true"}
        )
        assert off.returncode == 0, off.stderr
        assert "tier-1 prefilter" not in off.stdout

    def test_says_how_the_durable_path_encodes(self):
        from otel_audit.export._wire import NATIVE  # noqa: PLC0415

        result = check_config({})
        assert result.returncode == 0, result.stderr
        line = next(x for x in result.stdout.splitlines() if x.startswith("durable export"))
        assert ("C (otel_audit_otlpwire)" in line) is NATIVE
        batch = check_config({"OTEL_PYTHON_AUDIT_DELIVERY": "batch"})
        assert batch.returncode == 0, batch.stderr
        assert "durable export encoder" not in batch.stdout
