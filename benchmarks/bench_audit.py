"""Audit trail: appending events under the aggregate lock, and verifying the whole trail."""

from __future__ import annotations

import re
import time
import uuid

from sqlalchemy import text

from benchmarks.harness import Result, median, percentile
from exchange import create_app
from exchange.actor import SYSTEM
from exchange.audit.services import create_checkpoint, record_event, verify
from exchange.db import make_engine, normalize_url, session_scope
from exchange.schema import upgrade

EVENTS = 2000
CHAINS = 50


def _scratch(backend: str, url: str) -> tuple[str, callable]:
    if backend == "sqlite":
        return url, lambda: None
    name = f"rmx_bench_{uuid.uuid4().hex[:8]}"
    admin = make_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f'CREATE DATABASE "{name}"'))
    scratch = re.sub(r"/[^/]*$", f"/{name}", normalize_url(url))

    def drop() -> None:
        with admin.connect() as c:
            c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    return scratch, drop


def run(backend: str, url: str) -> list[Result]:
    url, drop = _scratch(backend, url)
    try:
        engine = make_engine(url)
        upgrade(engine)
        engine.dispose()
        app = create_app({"DATABASE_URL": url, "TESTING": True, "RUN_JOBS_IN_PROCESS": False})
        samples = []
        with app.app_context():
            start = time.perf_counter()
            for i in range(EVENTS):
                t0 = time.perf_counter()
                with session_scope(app) as s:
                    record_event(s, SYSTEM, "bench:thing:touched", "thing", i % CHAINS, {"i": i})
                samples.append((time.perf_counter() - t0) * 1000)
            elapsed = time.perf_counter() - start
            with session_scope(app) as s:
                create_checkpoint(s)
            t0 = time.perf_counter()
            with session_scope(app) as s:
                report = verify(s)
            verify_s = time.perf_counter() - t0
        app.extensions["exchange.engine"].dispose()
        rate = EVENTS / elapsed
        return [
            Result(
                f"audit append + commit ({backend})",
                f"{EVENTS} events/{CHAINS} chains",
                median(samples),
                percentile(samples, 99),
                rate,
                "events/s",
                "≥ 200 events/s",
                rate >= 200,
            ),
            Result(
                f"audit verify ({backend})",
                f"{report.events} events",
                None,
                None,
                report.events / verify_s,
                "events/s",
                "≥ 5,000 events/s and OK",
                report.ok and report.events / verify_s >= 5000,
            ),
        ]
    finally:
        drop()
