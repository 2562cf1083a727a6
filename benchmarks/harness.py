"""Timing helpers and the results table."""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results.json"


@dataclass
class Result:
    name: str
    work: str
    median_ms: float | None
    p99_ms: float | None
    throughput: float | None
    unit: str
    target: str
    met: bool
    detail: str = ""

    @property
    def value(self) -> float | None:
        return self.throughput if self.throughput is not None else self.median_ms


def time_calls(fn: Callable[[], object], n: int) -> list[float]:
    """Wall-clock milliseconds of ``n`` calls."""
    samples = []
    for _ in range(n):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1000)
    return samples


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    index = min(int(round(q / 100 * (len(ordered) - 1))), len(ordered) - 1)
    return ordered[index]


def median(samples: list[float]) -> float:
    return statistics.median(samples)


def report(results: list[Result]) -> None:
    header = (
        f"{'name':<38} {'work':<22} {'median':>9} {'p99':>9} {'throughput':>14} {'target':<22} met"
    )
    print(header)
    print("-" * len(header))
    for r in results:
        med = f"{r.median_ms:.2f}ms" if r.median_ms is not None else "—"
        p99 = f"{r.p99_ms:.2f}ms" if r.p99_ms is not None else "—"
        thr = f"{r.throughput:,.0f} {r.unit}" if r.throughput is not None else "—"
        print(
            f"{r.name:<38} {r.work:<22} {med:>9} {p99:>9} {thr:>14} {r.target:<22} "
            f"{'yes' if r.met else 'NO'}"
        )
    records = [
        {
            "name": r.name,
            "value": r.value,
            "unit": r.unit if r.throughput is not None else "ms",
            "target": r.target,
            "met": r.met,
            "detail": r.detail or asdict(r),
        }
        for r in results
    ]
    RESULTS.write_text(json.dumps(records, indent=2, ensure_ascii=False) + "\n")
    print(f"\nwritten to {RESULTS.name}")
