"""Background work: periodic jobs run in-process (embedded default) or by a worker command.

The embedded default starts one daemon thread on the first request. In production, run
``flask --app exchange jobs worker`` on one or more hosts: each periodic job takes a Redis lock
(``SET NX EX``) before it runs, so any number of workers run each tick once.
"""

from __future__ import annotations

import gc
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from flask import Flask, current_app, has_app_context
from sqlalchemy.orm import Session

from exchange.db import after_commit, session_scope


@contextmanager
def collector_paused() -> Iterator[None]:
    """Hold Python's cyclic garbage collector for one unit of bulk work.

    A closing batch or a lot's match recompute allocates hundreds of thousands of short-lived
    objects (rows, views, rule results); every few hundred allocations the collector would
    run, and now and then walk the whole heap of the app, which cost about a fifth of the
    closing's CPU time. That garbage is reference-counted away anyway; what is left is
    collected once the work is over. The pause is process-wide, and lasts well under a second.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


@dataclass(frozen=True)
class PeriodicJob:
    name: str
    every_seconds: int
    run: Callable[[Flask], object]


def _checkpoint(app: Flask) -> object:
    from exchange.audit.services import create_checkpoint

    with session_scope(app) as session:
        checkpoint = create_checkpoint(session)
        return checkpoint.id if checkpoint else None


def _purge_idempotency_keys(app: Flask) -> object:
    import datetime as dt

    from exchange.apiplatform.idempotency import purge_expired

    with session_scope(app) as session:
        return purge_expired(session, dt.timedelta(hours=app.config["IDEMPOTENCY_KEY_HOURS"]))


def _lapse_contracts(app: Flask) -> object:
    from exchange.actor import SYSTEM
    from exchange.contracts.lifecycle import lapse_overdue

    with session_scope(app) as session:
        return lapse_overdue(session, SYSTEM)


def _draw_contracts(app: Flask) -> object:
    """Every open award (buy-now, allocation at close, award ladder) gets its contract.

    Trading sits below contracts, so it cannot call contracts itself; this job wires the two.
    Each award is drawn in its own transaction so one failure does not hold up the others.
    """
    from sqlalchemy import select

    from exchange.actor import SYSTEM
    from exchange.contracts.models import Contract
    from exchange.contracts.services import create_contract_from_award
    from exchange.errors import DomainError
    from exchange.trading.models import Award, AwardStatus

    with session_scope(app) as session:
        pending = session.scalars(
            select(Award.id)
            .where(Award.status == AwardStatus.OPEN, ~Award.id.in_(select(Contract.award_id)))
            .order_by(Award.id)
            .limit(200)
        ).all()
    drawn = []
    for award_id in pending:
        try:
            with session_scope(app) as session:
                drawn.append(create_contract_from_award(session, SYSTEM, award_id).id)
        except DomainError:
            app.logger.info("award %s: no contract drawn", award_id)
    return drawn


def _close_due_lots(app: Flask) -> object:
    from exchange.trading.tasks import close_due

    return close_due(app)


def _email_trade_notices(app: Flask) -> object:
    from exchange.trading.tasks import email_trade_notices

    return email_trade_notices(app)


def _refresh_statistics(app: Flask) -> object:
    from exchange.reporting.statistics import refresh

    with session_scope(app) as session:
        return refresh(session).kind


def _detect_anomalies(app: Flask) -> object:
    from exchange.reporting.flags import detect

    with session_scope(app) as session:
        return len(detect(session))


def _payments_overdue(app: Flask) -> object:
    from exchange.payments.overdue import mark_overdue

    with session_scope(app) as session:
        return len(mark_overdue(session))


def _match_sweep(app: Flask) -> object:
    from exchange.demand.sweep import sweep

    with app.test_request_context(), session_scope(app) as session:
        return sweep(session)


def periodic_jobs(app: Flask) -> list[PeriodicJob]:
    """The registry later contexts extend (closing auctions, matching, overdue invoices)."""
    return [
        PeriodicJob("audit-checkpoint", app.config["AUDIT_CHECKPOINT_SECONDS"], _checkpoint),
        PeriodicJob("api-idempotency-purge", 3600, _purge_idempotency_keys),
        PeriodicJob(
            "contracts-lapse", app.config.get("CONTRACT_LAPSE_SECONDS", 60), _lapse_contracts
        ),
        PeriodicJob("contracts-from-awards", 10, _draw_contracts),
        PeriodicJob("trading-close", app.config["TRADING_CLOSE_SECONDS"], _close_due_lots),
        PeriodicJob("trading-notices", app.config["TRADING_NOTICE_SECONDS"], _email_trade_notices),
        PeriodicJob(
            "reporting-statistics",
            app.config.get("STATISTICS_REFRESH_SECONDS", 900),
            _refresh_statistics,
        ),
        PeriodicJob(
            "reporting-anomalies", app.config.get("ANOMALY_CHECK_SECONDS", 900), _detect_anomalies
        ),
        PeriodicJob("payments-overdue", app.config["PAYMENTS_OVERDUE_SECONDS"], _payments_overdue),
        PeriodicJob("match-sweep", app.config["MATCH_SWEEP_SECONDS"], _match_sweep),
    ]


# --- matching on demand (called by contexts below demand, e.g. listings) ----------------------


def recompute_matches(app: Flask, lot_id: int | None = None, demand_id: int | None = None) -> None:
    """Recompute one lot's or one demand's matches in a session of its own, and commit."""
    from exchange.demand.matching import recompute_for_demand, recompute_for_lot

    with app.test_request_context(), session_scope(app) as session:
        if lot_id is not None:
            recompute_for_lot(session, lot_id)
        if demand_id is not None:
            recompute_for_demand(session, demand_id)


def _rq_recompute_matches(lot_id: int | None, demand_id: int | None) -> None:
    """RQ entry point: builds the app from the environment."""
    from exchange import create_app

    recompute_matches(create_app(), lot_id, demand_id)


def queue_match_recompute(
    session: Session, *, lot_id: int | None = None, demand_id: int | None = None
) -> None:
    """After ``session`` commits, recompute that lot's (or demand's) matches in the background.

    RQ on Redis when ``REDIS_URL`` is set, else a thread in this process; synchronously under
    TESTING. The periodic sweep catches anything a lost job misses. For the listings context:
    call this whenever a lot is published, edited, re-assayed, sold from or withdrawn.
    """
    if not has_app_context():
        return  # a script or benchmark outside the app: no worker here; the sweep catches it
    app = current_app._get_current_object()  # type: ignore[attr-defined]

    def run() -> None:
        if app.config["TESTING"]:
            recompute_matches(app, lot_id, demand_id)
        elif app.config.get("REDIS_URL"):
            import redis
            from rq import Queue

            queue = Queue("matching", connection=redis.Redis.from_url(app.config["REDIS_URL"]))
            queue.enqueue(_rq_recompute_matches, lot_id, demand_id)
        else:
            threading.Thread(
                target=recompute_matches, args=(app, lot_id, demand_id), daemon=True
            ).start()

    after_commit(session, run)


def run_once(app: Flask, job: PeriodicJob) -> bool:
    """Run ``job`` unless another worker holds its lock for this tick; True if it ran."""
    url = app.config.get("REDIS_URL")
    if url:
        import redis

        client = redis.Redis.from_url(url)
        if not client.set(f"rmx:job:{job.name}", "1", nx=True, ex=max(job.every_seconds - 1, 1)):
            return False
    with app.app_context():
        job.run(app)
    return True


def _loop(app: Flask, stop: threading.Event) -> None:
    jobs = periodic_jobs(app)
    next_at = {job.name: 0.0 for job in jobs}
    while not stop.is_set():
        now = time.monotonic()
        for job in jobs:
            if now >= next_at[job.name]:
                try:
                    run_once(app, job)
                except Exception:
                    app.logger.exception("job %s failed", job.name)
                next_at[job.name] = now + job.every_seconds
        stop.wait(1.0)


def start_worker_thread(app: Flask) -> threading.Event:
    stop = threading.Event()
    threading.Thread(target=_loop, args=(app, stop), name="rmx-jobs", daemon=True).start()
    return stop


def init_app(app: Flask) -> None:
    if not app.config["RUN_JOBS_IN_PROCESS"] or app.config["TESTING"]:
        return
    started = threading.Lock()
    state = {"running": False}

    @app.before_request
    def _start_jobs() -> None:
        if state["running"]:
            return
        with started:
            if not state["running"]:
                state["running"] = True
                start_worker_thread(app)


def worker(app: Flask) -> None:
    """Run the periodic jobs forever in this process (production worker command)."""
    stop = threading.Event()
    try:
        _loop(app, stop)
    except KeyboardInterrupt:
        stop.set()
