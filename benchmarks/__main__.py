"""Run every benchmark: ``python -m benchmarks`` (``make bench``)."""

from __future__ import annotations

import os
import sys
import tempfile

from benchmarks import (
    bench_audit,
    bench_catalogue,
    bench_matching,
    bench_payments,
    bench_reporting,
    bench_trading,
)
from benchmarks.harness import report


def main() -> int:
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        results += bench_audit.run("sqlite", f"sqlite:///{tmp}/bench.sqlite3")
        results += bench_payments.run("sqlite", f"sqlite:///{tmp}/bench-payments.sqlite3")
        pg = os.environ.get("BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
        try:
            results += bench_audit.run("postgresql", pg)
            results += bench_trading.run(pg)
            results += bench_reporting.run("postgresql", pg)
            results += bench_payments.run("postgresql", pg)
            results += bench_matching.run("postgresql", pg)
            results += bench_catalogue.run(pg)
        except Exception as exc:  # PostgreSQL is optional for make bench
            print(
                f"PostgreSQL benchmarks skipped: {exc.__class__.__name__}: {exc}", file=sys.stderr
            )
    report(results)
    return 0 if all(r.met for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
