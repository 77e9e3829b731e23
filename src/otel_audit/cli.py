"""The ``otel-audit`` command.

Subcommands live next to the code they drive and register themselves here, so the CLI
uses exactly the engine and settings that the processor uses.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from otel_audit._catalogue import CATALOGUE
from otel_audit._exporters import validate_otel_environment
from otel_audit._settings import load_settings
from otel_audit.exceptions import ConfigurationError

# Modules that add subcommands; each has register(subparsers). Optional ones may be absent.
_SUBCOMMAND_MODULES = (
    "otel_audit.redaction._cli",
    "otel_audit.export._cli",
    "otel_audit._demo",
)


def _check_config(_args: argparse.Namespace) -> int:
    try:
        settings = load_settings()
        validate_otel_environment(os.environ)
    except ConfigurationError as exc:
        sys.stderr.write(f"otel-audit: configuration error: {exc}\n")
        return 2
    sys.stdout.write("configuration OK\n")
    for name in sorted(settings.__slots__):
        value = (
            "<set>" if name == "hmac_key" and getattr(settings, name) else getattr(settings, name)
        )
        sys.stdout.write(f"  {name} = {value}\n")
    if settings.redaction != "off":
        sys.stdout.write(f"tier-1 prefilter: {_prefilter_description()}\n")
    if settings.delivery == "durable":
        sys.stdout.write(f"durable export encoder: {_encoder_description()}\n")
    return 0


def _encoder_description() -> str:
    """Whether the durable path encodes records in C or in Python (several times the CPU)."""
    from otel_audit.export._wire import NATIVE  # noqa: PLC0415  # only when asked

    if NATIVE:
        return "C (otel_audit_otlpwire)"
    return "Python (build native/otlpwire with scripts/build-otlpwire.sh: about 3x less CPU)"


def _prefilter_description() -> str:
    """Which engine tier 1's prefilter runs on, and what that means for the app thread."""
    from otel_audit.redaction import RedactionEngine  # noqa: PLC0415  # only when asked

    engine = RedactionEngine()
    if engine.backend != "re2":
        return "re (pure Python; install the re2 extra: about 10 us more per record)"
    if engine.prefilter_holds_gil:
        return "re2, keeps the GIL (otel_audit_re2hold)"
    return "re2, releases the GIL on every scan (google-re2; build native/re2hold to keep it)"


def _catalogue(args: argparse.Namespace) -> int:
    rows = sorted(CATALOGUE, key=lambda t: t.name)
    if args.format == "markdown":
        sys.stdout.write(
            "| name | category | severity | outcome | ECS category | ECS type | "
            "OCSF class | activity |\n|---|---|---|---|---|---|---|---|\n"
        )
        for t in rows:
            sys.stdout.write(
                f"| `{t.name}` | {t.category.value} | {t.severity.name} | {t.outcome.value} | "
                f"{', '.join(t.ecs_category)} | {', '.join(t.ecs_type)} | "
                f"{t.ocsf_class.name.replace('_', ' ').title()} ({int(t.ocsf_class)}) | "
                f"{t.ocsf_activity_id} |\n"
            )
    else:
        for t in rows:
            sys.stdout.write(f"{t.name}\t{t.category.value}\t{t.description}\n")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every available subcommand."""
    parser = argparse.ArgumentParser(prog="otel-audit", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    check = sub.add_parser("check-config", help="validate OTEL_* and OTEL_PYTHON_AUDIT_* settings")
    check.set_defaults(func=_check_config)
    cat = sub.add_parser("catalogue", help="list the security-event catalogue")
    cat.add_argument("--format", choices=("text", "markdown"), default="text")
    cat.set_defaults(func=_catalogue)
    for module_name in _SUBCOMMAND_MODULES:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name and not module_name.startswith(str(exc.name)):
                raise
            continue
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    raise SystemExit(main())
