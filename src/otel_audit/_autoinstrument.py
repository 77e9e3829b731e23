"""Zero-code start under ``opentelemetry-instrument``.

Only one ``opentelemetry_configurator`` is loaded and ``opentelemetry-distro`` takes it,
so we hook ``opentelemetry_post_instrument``, which runs after the configurator and the
instrumentors. There we take over the logs pipeline the distro built from the same
``OTEL_*`` variables: the AuditProcessor goes first and security events get the durable
path, exactly as :func:`otel_audit.configure` would do. Start-up errors are written to
stderr because ``opentelemetry-instrument`` logs and swallows exceptions from hooks.
"""

from __future__ import annotations

import os
from typing import Any

from opentelemetry._logs import get_logger_provider
from opentelemetry.sdk._logs import LoggerProvider

from otel_audit._configure import configure, report_startup_error
from otel_audit._settings import load_settings


def post_instrument(**_kwargs: Any) -> None:
    """Install otel-audit into the SDK pipeline set up by the configurator."""
    try:
        settings = load_settings()
        if not settings.enabled:
            return
        provider = get_logger_provider()
        if isinstance(provider, LoggerProvider):
            configure(logger_provider=provider, replace_existing_processors=True)
        elif os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() != "true":
            configure()
    except Exception as exc:
        report_startup_error(exc)
        raise
