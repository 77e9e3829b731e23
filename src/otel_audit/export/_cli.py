"""
``otel-audit verify`` and ``otel-audit spool {stats,replay}``.

``otel_audit.cli`` calls :func:`register` with its sub-parsers; each sub-command sets
``func`` to a callable taking the parsed arguments and returning the exit code.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from otel_audit.export._otlp import exporter_from_env
from otel_audit.export._spool import DEAD_DIR, STATS_DIR, Spool, is_live, read_entries
from otel_audit.export._verify import verify_files

_U64 = 8

_EXIT_OK = 0
_EXIT_PROBLEM = 1
_EXIT_USAGE = 2


def register(subparsers: Any) -> None:
    """Add ``verify`` and ``spool`` to the ``otel-audit`` command line."""
    verify = subparsers.add_parser(
        "verify",
        help="check the integrity chains in exported OTLP JSON files",
        description=(
            "Read OTLP JSON lines (as the collector's file exporter writes them), rebuild "
            "every integrity chain and report gaps, re-ordering, modification, insertion "
            "and deletion. The HMAC key comes from OTEL_PYTHON_AUDIT_HMAC_KEY. Exit code 1 "
            "on any problem."
        ),
    )
    verify.add_argument("files", nargs="+", type=Path, metavar="FILE")
    verify.add_argument(
        "--allow-reorder",
        action="store_true",
        help="report re-ordering as a warning (collectors with concurrent exporter queues)",
    )
    verify.add_argument("--json", action="store_true", help="print the report as JSON")
    verify.add_argument("--verbose", action="store_true", help="also list info-level notes")
    verify.set_defaults(func=_verify)

    spool = subparsers.add_parser("spool", help="inspect or replay the security-event spool")
    spool_sub = spool.add_subparsers(dest="spool_command", required=True)
    stats = spool_sub.add_parser("stats", help="what is waiting in the spool, and counters")
    stats.add_argument("--spool-dir", type=Path, help="default: from the settings")
    stats.add_argument("--json", action="store_true")
    stats.set_defaults(func=_spool_stats)
    replay = spool_sub.add_parser(
        "replay", help="send what dead processes left in the spool to the configured endpoint"
    )
    replay.add_argument("--spool-dir", type=Path, help="default: from the settings")
    replay.add_argument(
        "--dead-letter",
        action="store_true",
        help="also resend the dead-letter area (after fixing what made the receiver refuse it)",
    )
    replay.set_defaults(func=_spool_replay)


def _settings() -> Any:
    from otel_audit._settings import load_settings  # noqa: PLC0415  # keep CLI start-up light

    return load_settings()


def _out(text: str = "") -> None:
    sys.stdout.write(text + "\n")


def _err(text: str) -> None:
    sys.stderr.write(text + "\n")


def _verify(args: argparse.Namespace) -> int:
    missing = [str(p) for p in args.files if not Path(p).is_file()]
    if missing:
        _err(f"otel-audit verify: no such file: {', '.join(missing)}")
        return _EXIT_USAGE
    settings = _settings()
    report = verify_files(
        args.files,
        key=settings.hmac_key,
        key_id=settings.hmac_key_id,
        allow_reorder=args.allow_reorder,
    )
    if args.json:
        _out(
            json.dumps(
                {
                    "ok": report.ok,
                    "records": report.records,
                    "chained": report.chained,
                    "streams": report.streams,
                    "hmac_checked": report.hmac_checked,
                    "findings": [_finding(f) for f in report.findings],
                },
                indent=2,
            )
        )
    else:
        for finding in report.findings:
            if finding.severity != "info" or args.verbose:
                _out(str(finding))
        counts = Counter(f.kind for f in report.findings)
        summary = ", ".join(f"{k}={v}" for k, v in sorted(counts.items())) or "no findings"
        key_note = "HMAC checked" if report.hmac_checked else "no key: HMAC NOT checked"
        verdict = "OK" if report.ok else "FAILED"
        _out(
            f"{verdict}: {report.records} records, {report.chained} chained in "
            f"{report.streams} streams ({key_note}); {summary}"
        )
    return _EXIT_OK if report.ok else _EXIT_PROBLEM


def _finding(f: Any) -> dict[str, Any]:
    return {k: getattr(f, k) for k in ("kind", "severity", "stream", "seq", "where", "message")}


def _root(args: argparse.Namespace) -> Path:
    if args.spool_dir is not None:
        return Path(args.spool_dir)
    return Path(_settings().resolved_spool_dir())


def _entries_summary(paths: list[Path]) -> tuple[int, int, int]:
    """(entries, records, corrupt entries) pending in these segments."""
    entries = records = corrupt = 0
    for seg in paths:
        ack = seg.with_suffix(".ack")
        start = (
            int.from_bytes(ack.read_bytes(), "little")
            if ack.exists() and ack.stat().st_size == _U64
            else 0
        )
        for _, _, count, payload in read_entries(seg, start):
            if payload is None:
                corrupt += 1
            else:
                entries += 1
                records += count
    return entries, records, corrupt


def _spool_stats(args: argparse.Namespace) -> int:  # noqa: C901  # gather, then print
    root = _root(args)
    if not root.is_dir():
        _out(f"otel-audit spool stats: {root} does not exist (nothing spooled)")
        return _EXIT_OK
    out: dict[str, Any] = {"root": str(root), "processes": [], "dead_letter": {}, "counters": {}}
    for directory in sorted(p for p in root.iterdir() if p.is_dir() and p.name.startswith("p")):
        segments = sorted(directory.glob("*.seg"))
        entries, records, corrupt = _entries_summary(segments)
        out["processes"].append(
            {
                "dir": directory.name,
                "live": is_live(directory),
                "segments": len(segments),
                "bytes": sum(s.stat().st_size for s in segments),
                "pending_entries": entries,
                "pending_records": records,
                "corrupt_entries": corrupt,
            }
        )
    dead = root / DEAD_DIR
    dead_segments = sorted(dead.glob("*.seg")) if dead.is_dir() else []
    entries, records, corrupt = _entries_summary(dead_segments)
    out["dead_letter"] = {"entries": entries, "records": records, "corrupt_entries": corrupt}
    totals: Counter[str] = Counter()
    dropped: Counter[str] = Counter()
    stats_dir = root / STATS_DIR
    for stats_file in sorted(stats_dir.glob("*.json")) if stats_dir.is_dir() else []:
        try:
            counters = json.loads(stats_file.read_text(encoding="utf-8")).get("counters", {})
        except (OSError, ValueError):
            continue
        for name, value in counters.items():
            if name == "dropped" and isinstance(value, dict):
                dropped.update({k: int(v) for k, v in value.items()})
            elif isinstance(value, int):
                totals[name] += value
    out["counters"] = {**totals, "dropped": dict(dropped)}
    if args.json:
        _out(json.dumps(out, indent=2, sort_keys=True))
        return _EXIT_OK
    _out(f"spool root: {root}")
    for proc in out["processes"]:
        state = "live" if proc["live"] else "dead (replayed by the next process or 'spool replay')"
        _out(
            f"  {proc['dir']}: {state}; {proc['pending_records']} records in "
            f"{proc['pending_entries']} entries, {proc['segments']} segments, {proc['bytes']} bytes"
            + (f", {proc['corrupt_entries']} corrupt" if proc["corrupt_entries"] else "")
        )
    _out(f"  dead letters: {out['dead_letter']['records']} records")
    _out("counters (sum of the last report of every process):")
    for name in sorted(totals):
        _out(f"  {name}: {totals[name]}")
    for reason in sorted(dropped):
        _out(f"  dropped{{reason={reason}}}: {dropped[reason]}")
    return _EXIT_OK


def _spool_replay(args: argparse.Namespace) -> int:
    root = _root(args)
    if not root.is_dir():
        _out(f"otel-audit spool replay: {root} does not exist (nothing to replay)")
        return _EXIT_OK
    exporter = exporter_from_env()
    sent = failed = 0
    spool = Spool(root, max_bytes=1 << 62)
    try:
        spool.open()  # adopts the directories of dead processes (live ones stay locked)
        while True:
            entry = spool.peek().entry
            if entry is None:
                break
            outcome = exporter.export_encoded(entry.payload)
            if not outcome.ok:
                _err(f"otel-audit spool replay: stopped: {outcome.detail}")
                failed += entry.count
                break
            spool.ack(entry)
            sent += entry.count
        if args.dead_letter and not failed:
            d_sent, d_failed = _replay_dead(root, exporter)
            sent += d_sent
            failed += d_failed
    finally:
        spool.close()
        exporter.shutdown()
    _out(f"replayed {sent} records" + (f"; {failed} could not be sent" if failed else ""))
    return _EXIT_OK if not failed else _EXIT_PROBLEM


def _replay_dead(root: Path, exporter: Any) -> tuple[int, int]:
    sent = failed = 0
    dead = root / DEAD_DIR
    for seg in sorted(dead.glob("*.seg")) if dead.is_dir() else []:
        ok = True
        for _, _, count, payload in read_entries(seg):
            if payload is None:
                continue
            if exporter.export_encoded(payload).ok:
                sent += count
            else:
                failed += count
                ok = False
        if ok:
            seg.unlink()
            seg.with_suffix(".log").unlink(missing_ok=True)
    return sent, failed
