"""Parse the ``OTEL_PYTHON_AUDIT_*`` variables once into a frozen :class:`AuditSettings`.

All validation lives here so that a bad deployment fails at start-up, naming the variable,
the value and what is accepted, instead of misbehaving later inside a logging call.
The environment is a parameter (a ``Mapping``), so tests pass a dict.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Literal

from otel_audit import environment_variables as ev
from otel_audit.exceptions import ConfigurationError

_TRUE = frozenset({"true", "1", "yes", "on"})
_FALSE = frozenset({"false", "0", "no", "off"})
_KEY_ID = re.compile(r"[A-Za-z0-9_.-]{1,32}")
_MIN_KEY_BYTES = 16

RedactionLevel = Literal["off", "standard", "strict"]
RedactionScope = Literal["all", "security"]
Tier2Mode = Literal["off", "presidio", "presidio-ner"]
DeliveryMode = Literal["durable", "batch"]
OverflowPolicy = Literal["block", "drop"]
HttpEvent = Literal["denied", "rate_limited", "server_error"]

_HTTP_EVENTS: tuple[HttpEvent, ...] = ("denied", "rate_limited", "server_error")


def _default_spool_dir(environ: Mapping[str, str]) -> Path:
    state = environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    service = environ.get("OTEL_SERVICE_NAME", "").strip() or "unknown_service"
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", service)[:64]
    return Path(state) / "otel-audit" / safe


@dataclass(frozen=True, slots=True)
class AuditSettings:
    """Every otel-audit setting, parsed and validated.

    Build it with :func:`load_settings` (environment, then overrides); construct it
    directly only in tests. Field names are the variable names without the
    ``OTEL_PYTHON_AUDIT_`` prefix, lower-cased.
    """

    enabled: bool = True
    security_loggers: tuple[str, ...] = ("security",)
    redaction: RedactionLevel = "standard"
    redaction_allow_off: bool = False
    redaction_scope: RedactionScope = "all"
    redaction_tier2: Tier2Mode = "off"
    spacy_model: str = "en_core_web_sm"
    mask_client_ip: bool = False
    hmac_key: bytes | None = field(default=None, repr=False)
    hmac_key_id: str = "k1"
    delivery: DeliveryMode = "durable"
    spool_dir: Path | None = None
    spool_max_bytes: int = 256 * 1024 * 1024
    queue_size: int = 8192
    overflow: OverflowPolicy = "block"
    block_timeout_ms: int = 1000
    last_resort: str = "stderr"
    integrity: bool = True
    checkpoint_interval: int = 1000
    trusted_proxies: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()
    request_id_header: str = "X-Request-ID"
    http_events: frozenset[HttpEvent] = frozenset(_HTTP_EVENTS)
    sensitive_routes: tuple[str, ...] = (
        "/login*",
        "/logout*",
        "/auth/*",
        "/admin/*",
        "/api/keys*",
        "/account/*",
    )
    detections: bool = False
    defer_events: bool = True
    brute_force_threshold: int = 5
    stuffing_threshold: int = 10
    detection_window_s: float = 300.0
    export_threshold: int = 10000
    admin_roles: frozenset[str] = frozenset({"admin", "root", "superuser", "owner"})

    def resolved_spool_dir(self, environ: Mapping[str, str] | None = None) -> Path:
        """The spool directory, falling back to the per-service default."""
        if self.spool_dir is not None:
            return self.spool_dir
        return _default_spool_dir(os.environ if environ is None else environ)

    def with_overrides(self, **overrides: Any) -> AuditSettings:
        """A copy with some fields replaced; unknown names raise ``TypeError``."""
        known = {f.name for f in fields(self)}
        unknown = sorted(set(overrides) - known)
        if unknown:
            msg = f"unknown otel-audit setting(s): {', '.join(unknown)}"
            raise TypeError(msg)
        return replace(self, **overrides)


# --- one parser per value shape; each raises ConfigurationError naming the variable ---


def _bool(var: str, raw: str) -> bool:
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ConfigurationError(var, raw, "true, false")


def _choice(choices: tuple[str, ...]) -> Callable[[str, str], str]:
    def parse(var: str, raw: str) -> str:
        value = raw.strip().lower()
        if value not in choices:
            raise ConfigurationError(var, raw, choices)
        return value

    return parse


def _int(minimum: int, maximum: int | None = None) -> Callable[[str, str], int]:
    accepted = (
        f"an integer >= {minimum}" if maximum is None else f"an integer from {minimum} to {maximum}"
    )

    def parse(var: str, raw: str) -> int:
        try:
            value = int(raw.strip().replace("_", ""))
        except ValueError:
            raise ConfigurationError(var, raw, accepted) from None
        if value < minimum or (maximum is not None and value > maximum):
            raise ConfigurationError(var, raw, accepted)
        return value

    return parse


def _positive_float(var: str, raw: str) -> float:
    try:
        value = float(raw.strip())
    except ValueError:
        raise ConfigurationError(var, raw, "a number of seconds > 0") from None
    if not (0 < value < float("inf")):
        raise ConfigurationError(var, raw, "a number of seconds > 0")
    return value


def _names(var: str, raw: str) -> tuple[str, ...]:
    items = tuple(item.strip() for item in raw.split(",") if item.strip())
    if not items:
        raise ConfigurationError(var, raw, "a comma-separated list of names")
    return items


def _cidrs(var: str, raw: str) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    networks = []
    for item in raw.split(","):
        text = item.strip()
        if not text:
            continue
        try:
            networks.append(ipaddress.ip_network(text, strict=False))
        except ValueError:
            raise ConfigurationError(
                var, raw, "a comma-separated list of IP addresses or CIDR networks"
            ) from None
    return tuple(networks)


def _hmac_key(var: str, raw: str) -> bytes:
    accepted = f"base64:<data>, hex:<data> or plain text of at least {_MIN_KEY_BYTES} bytes"
    text = raw.strip()
    try:
        if text.startswith("base64:"):
            key = base64.b64decode(text[7:], validate=True)
        elif text.startswith("hex:"):
            key = bytes.fromhex(text[4:])
        else:
            key = text.encode("utf-8")
    except (binascii.Error, ValueError):
        # Never echo a key, not even a malformed one.
        raise ConfigurationError(var, "<hidden>", accepted) from None
    if len(key) < _MIN_KEY_BYTES:
        raise ConfigurationError(var, "<hidden>", accepted)
    return key


def _key_id(var: str, raw: str) -> str:
    value = raw.strip()
    if not _KEY_ID.fullmatch(value):
        raise ConfigurationError(var, raw, "1 to 32 characters of A-Z a-z 0-9 _ . -")
    return value


def _header(var: str, raw: str) -> str:
    value = raw.strip()
    if not re.fullmatch(r"[A-Za-z0-9-]{1,64}", value):
        raise ConfigurationError(var, raw, "an HTTP header name (letters, digits, '-')")
    return value


def _http_events(var: str, raw: str) -> frozenset[HttpEvent]:
    value = raw.strip().lower()
    if value == "none":
        return frozenset()
    chosen: set[HttpEvent] = set()
    for item in value.split(","):
        name = item.strip()
        if name not in _HTTP_EVENTS:
            raise ConfigurationError(var, raw, (*_HTTP_EVENTS, "none"))
        chosen.add(name)
    return frozenset(chosen)


def _path(var: str, raw: str) -> Path:
    value = raw.strip()
    if not value or "\0" in value:
        raise ConfigurationError(var, raw, "a directory path")
    return Path(value).expanduser()


def _last_resort(var: str, raw: str) -> str:
    value = raw.strip()
    if not value or "\0" in value:
        raise ConfigurationError(var, raw, "stderr or a file path")
    return value


def _module_name(var: str, raw: str) -> str:
    value = raw.strip()
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,99}", value):
        raise ConfigurationError(var, raw, "the name of an installed spaCy pipeline package")
    return value


def _lower_set(var: str, raw: str) -> frozenset[str]:
    return frozenset(name.lower() for name in _names(var, raw))


_PARSERS: dict[str, tuple[str, Callable[[str, str], Any]]] = {
    ev.OTEL_PYTHON_AUDIT_ENABLED: ("enabled", _bool),
    ev.OTEL_PYTHON_AUDIT_SECURITY_LOGGERS: ("security_loggers", _names),
    ev.OTEL_PYTHON_AUDIT_REDACTION: ("redaction", _choice(("off", "standard", "strict"))),
    ev.OTEL_PYTHON_AUDIT_REDACTION_ALLOW_OFF: ("redaction_allow_off", _bool),
    ev.OTEL_PYTHON_AUDIT_REDACTION_SCOPE: ("redaction_scope", _choice(("all", "security"))),
    ev.OTEL_PYTHON_AUDIT_REDACTION_TIER2: (
        "redaction_tier2",
        _choice(("off", "presidio", "presidio-ner")),
    ),
    ev.OTEL_PYTHON_AUDIT_SPACY_MODEL: ("spacy_model", _module_name),
    ev.OTEL_PYTHON_AUDIT_MASK_CLIENT_IP: ("mask_client_ip", _bool),
    ev.OTEL_PYTHON_AUDIT_HMAC_KEY: ("hmac_key", _hmac_key),
    ev.OTEL_PYTHON_AUDIT_HMAC_KEY_ID: ("hmac_key_id", _key_id),
    ev.OTEL_PYTHON_AUDIT_DELIVERY: ("delivery", _choice(("durable", "batch"))),
    ev.OTEL_PYTHON_AUDIT_SPOOL_DIR: ("spool_dir", _path),
    ev.OTEL_PYTHON_AUDIT_SPOOL_MAX_BYTES: ("spool_max_bytes", _int(1024 * 1024)),
    ev.OTEL_PYTHON_AUDIT_QUEUE_SIZE: ("queue_size", _int(1, 10_000_000)),
    ev.OTEL_PYTHON_AUDIT_OVERFLOW: ("overflow", _choice(("block", "drop"))),
    ev.OTEL_PYTHON_AUDIT_BLOCK_TIMEOUT_MS: ("block_timeout_ms", _int(0, 600_000)),
    ev.OTEL_PYTHON_AUDIT_LAST_RESORT: ("last_resort", _last_resort),
    ev.OTEL_PYTHON_AUDIT_INTEGRITY: ("integrity", _bool),
    ev.OTEL_PYTHON_AUDIT_CHECKPOINT_INTERVAL: ("checkpoint_interval", _int(0)),
    ev.OTEL_PYTHON_AUDIT_TRUSTED_PROXIES: ("trusted_proxies", _cidrs),
    ev.OTEL_PYTHON_AUDIT_REQUEST_ID_HEADER: ("request_id_header", _header),
    ev.OTEL_PYTHON_AUDIT_HTTP_EVENTS: ("http_events", _http_events),
    ev.OTEL_PYTHON_AUDIT_SENSITIVE_ROUTES: ("sensitive_routes", _names),
    ev.OTEL_PYTHON_AUDIT_DETECTIONS: ("detections", _bool),
    ev.OTEL_PYTHON_AUDIT_DEFER_EVENTS: ("defer_events", _bool),
    ev.OTEL_PYTHON_AUDIT_BRUTE_FORCE_THRESHOLD: ("brute_force_threshold", _int(1)),
    ev.OTEL_PYTHON_AUDIT_STUFFING_THRESHOLD: ("stuffing_threshold", _int(2)),
    ev.OTEL_PYTHON_AUDIT_DETECTION_WINDOW_S: ("detection_window_s", _positive_float),
    ev.OTEL_PYTHON_AUDIT_EXPORT_THRESHOLD: ("export_threshold", _int(1)),
    ev.OTEL_PYTHON_AUDIT_ADMIN_ROLES: ("admin_roles", _lower_set),
}

KNOWN_VARIABLES: frozenset[str] = frozenset(_PARSERS)


def load_settings(environ: Mapping[str, str] | None = None, **overrides: Any) -> AuditSettings:
    """Read every ``OTEL_PYTHON_AUDIT_*`` variable and apply keyword overrides.

    Precedence is argument > environment variable > default. An unknown variable with the
    ``OTEL_PYTHON_AUDIT_`` prefix is an error too: a misspelt name would otherwise silently
    leave a protection at its default.

    Raises:
        ConfigurationError: a variable has a value that is not accepted.
    """
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    for name, raw in env.items():
        if not name.startswith("OTEL_PYTHON_AUDIT_"):
            continue
        if name not in _PARSERS:
            # A misspelt key variable may hold key material: never echo the value.
            raise ConfigurationError(name, "<hidden>", sorted(KNOWN_VARIABLES))
        if raw.strip() == "":
            continue  # empty means unset, as in the rest of OpenTelemetry
        attr, parse = _PARSERS[name]
        values[attr] = parse(name, raw)
    settings = AuditSettings(**values).with_overrides(**overrides)
    if settings.redaction == "off" and not settings.redaction_allow_off:
        raise ConfigurationError(
            ev.OTEL_PYTHON_AUDIT_REDACTION,
            "off",
            "standard, strict (off needs OTEL_PYTHON_AUDIT_REDACTION_ALLOW_OFF=true)",
        )
    return settings
