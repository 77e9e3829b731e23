"""
Same-process A/B timing: run the baseline and ours alternately, report medians and ratios.

Alternating rounds in one process cancel most of the noise of a shared machine (CPU
frequency, other tenants), so the printed ratio is stable even when absolute numbers are
not. Nothing here asserts a time; the benchmark prints and the reader judges.
"""

from __future__ import annotations

import gc
import os
import platform
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from opentelemetry.sdk._logs.export import LogRecordExporter, LogRecordExportResult


class Discard(LogRecordExporter):
    """An exporter that drops everything, so only the app-thread path is measured."""

    def export(self, batch: Sequence[object]) -> LogRecordExportResult:
        return LogRecordExportResult.SUCCESS

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


@dataclass(frozen=True)
class Result:
    """Median cost per call of one variant."""

    name: str
    per_call_ns: float
    spread_ns: float


def machine() -> str:
    """One line describing where the numbers came from."""
    return (
        f"{platform.python_implementation()} {platform.python_version()} on "
        f"{platform.machine()} {platform.system()}, {os.cpu_count()} CPUs, "
        f"{platform.processor() or 'unknown CPU'}"
    )


def compare(
    variants: dict[str, Callable[[int], None]],
    *,
    calls: int = 2000,
    rounds: int = 15,
    warmup: int = 2,
) -> dict[str, Result]:
    """
    Time each variant ``rounds`` times, interleaved, ``calls`` calls per round.

    Each variant is a function taking the number of calls to make.
    """
    samples: dict[str, list[float]] = {name: [] for name in variants}
    for round_no in range(warmup + rounds):
        for name, run in variants.items():
            gc.collect()
            start = time.perf_counter_ns()
            run(calls)
            elapsed = time.perf_counter_ns() - start
            if round_no >= warmup:
                samples[name].append(elapsed / calls)
    return {
        name: Result(name, statistics.median(values), statistics.pstdev(values))
        for name, values in samples.items()
    }


def report(title: str, results: dict[str, Result], baseline: str) -> None:
    """Print a small table with ratios against ``baseline``."""
    base = results[baseline].per_call_ns
    print(f"\n{title}")
    print(f"  machine: {machine()}")
    print(f"  {'variant':<44} {'µs/call':>9} {'±':>6} {'ratio':>7}")
    for result in results.values():
        print(
            f"  {result.name:<44} {result.per_call_ns / 1000:>9.2f} "
            f"{result.spread_ns / 1000:>6.2f} {result.per_call_ns / base:>7.2f}"
        )
