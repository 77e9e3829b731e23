"""
``otel-audit redact``: JSON lines in, the same lines redacted out.

Operators run it over old log files with the same engine and the same
``OTEL_PYTHON_AUDIT_*`` settings as the processor, so a file cleaned offline matches what
the live pipeline would have sent. A bad line is reported on stderr by number and skipped;
the rest still go through, and the exit status says that something was skipped.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import IO, Any

from otel_audit._settings import load_settings
from otel_audit.redaction._engine import RedactionEngine

_EXIT_BAD_LINES = 1
_EXIT_CONFIG = 2


def redact_lines(engine: RedactionEngine, lines: Iterable[str], out: IO[str], err: IO[str]) -> int:
    """
    Redact JSON lines from ``lines`` to ``out``; report bad lines to ``err``.

    Args:
        engine: the tier-1 engine.
        lines: input lines, with or without line endings.
        out: where redacted lines go, one JSON object per line.
        err: where ``line N: …`` errors go.

    Returns:
        How many lines could not be processed.
    """
    failed = 0
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            # The position, not the text: the line may itself hold a secret.
            err.write(f"line {number}: not valid JSON ({exc.msg} at column {exc.colno})\n")
            failed += 1
            continue
        if not isinstance(record, dict):
            err.write(f"line {number}: not a JSON object\n")
            failed += 1
            continue
        attributes = record.get("attributes")
        if attributes is not None and not isinstance(attributes, dict):
            err.write(f"line {number}: attributes is not an object\n")
            failed += 1
            continue
        body, attrs, _ = engine.redact_parts(record.get("body"), attributes)
        output: dict[str, Any] = dict(record)
        if "body" in record:
            output["body"] = body
        if attributes is not None or attrs:
            output["attributes"] = attrs
        out.write(json.dumps(output, ensure_ascii=False, default=str) + "\n")
    return failed


def _run(args: argparse.Namespace) -> int:
    try:
        settings = load_settings()
    except ValueError as exc:
        sys.stderr.write(f"otel-audit redact: {exc}\n")
        return _EXIT_CONFIG
    engine = RedactionEngine.from_settings(settings)
    with contextlib.ExitStack() as stack:
        source: IO[str] = sys.stdin
        sink: IO[str] = sys.stdout
        if args.input not in (None, "-"):
            source = stack.enter_context(Path(args.input).open(encoding="utf-8"))
        if args.output not in (None, "-"):
            sink = stack.enter_context(Path(args.output).open("w", encoding="utf-8"))
        failed = redact_lines(engine, source, sink, sys.stderr)
    return _EXIT_BAD_LINES if failed else 0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """
    Add the ``redact`` subcommand.

    Args:
        subparsers: the ``otel-audit`` CLI's subparsers.
    """
    parser = subparsers.add_parser(
        "redact",
        help="redact JSON lines ({id, body, attributes}) with the processor's engine",
        description=(
            "Read JSON lines {'id', 'body', 'attributes'}; write them with body and "
            "attributes redacted by the same engine and OTEL_PYTHON_AUDIT_* settings as "
            "the processor. Bad lines are reported on stderr by number."
        ),
    )
    parser.add_argument("--input", metavar="FILE", help="input file (default: stdin)")
    parser.add_argument("--output", metavar="FILE", help="output file (default: stdout)")
    parser.set_defaults(func=_run)


def main(argv: list[str] | None = None) -> int:
    """Run ``redact`` on its own (``python -m otel_audit.redaction._cli``)."""
    parser = argparse.ArgumentParser(prog="otel-audit")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["redact", *(sys.argv[1:] if argv is None else argv)])
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
