"""Real threads on a real, committed database: buy-now, bidding and closing under contention.

Each test gets a database of its own (every thread commits). The controls run the same load with
the lot row lock removed and show that the assertions above them can fail; they run on
PostgreSQL only, because SQLite's BEGIN IMMEDIATE serialises every writer whatever the code does.
Measured figures are printed and written to tests/artifacts/trading_concurrency.json.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import random
import threading
import time
import uuid
from collections import Counter
from decimal import Decimal as D

import pytest
from sqlalchemy import func, select

from exchange import create_app
from exchange.audit.models import AuditEvent
from exchange.audit.services import verify
from exchange.db import session_scope, utcnow
from exchange.listings.models import Lot
from exchange.trading import closing, lots, rules, services, tasks
from exchange.trading.lots import terms_of, view
from exchange.trading.models import Award, Bid, LotClosing
from exchange.trading.rules import BidStatus
from tests.conftest import ARTIFACTS, BACKENDS, TEST_CONFIG, create_database, drop_database
from tests.support.builders import actor_of, make_company
from tests.support.trading import auction_lot, buy_now_lot

BUYERS = 32
BIDDERS = 16
FIGURES = ARTIFACTS / "trading_concurrency.json"


@pytest.fixture(params=BACKENDS)
def committed_app(request, tmp_path):
    name = f"rmx_trade_{uuid.uuid4().hex[:8]}"
    url = create_database(request.param, tmp_path, name)
    app = create_app({**TEST_CONFIG, "DATABASE_URL": url})
    yield request.param, app
    app.extensions["exchange.engine"].dispose()
    drop_database(request.param, name)


def record_figure(name: str, **values: object) -> None:
    """Keep the measured numbers (the lead's summary quotes them)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    figures = json.loads(FIGURES.read_text()) if FIGURES.exists() else {}
    figures[name] = values
    FIGURES.write_text(json.dumps(figures, indent=2, sort_keys=True) + "\n")
    print(f"\n{name}: {values}")


def run_threads(app, n: int, work) -> tuple[list[BaseException], float]:
    """Run ``work(index)`` in ``n`` threads released together; returns (errors, seconds)."""
    errors: list[BaseException] = []
    barrier = threading.Barrier(n + 1)

    def run(i: int) -> None:
        barrier.wait()
        try:
            with app.app_context():
                work(i)
        except BaseException as exc:  # collected and asserted on by the caller
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    barrier.wait()
    start = time.perf_counter()
    for t in threads:
        t.join()
    return errors, time.perf_counter() - start


def buyers(app, n: int):
    with app.app_context(), session_scope(app) as s:
        made = [make_company(s, producer=False, buyer=True) for _ in range(n)]
        return [actor_of(owner, company) for company, owner in made]


def unlocked(monkeypatch) -> None:
    """The control: take away the lot row lock (and the audit chain, which would otherwise
    turn the race into constraint errors instead of the lost updates it measures)."""
    monkeypatch.setattr(lots, "locked", lambda query: query)
    monkeypatch.setattr(services, "record_event", lambda *a, **k: None)
    monkeypatch.setattr(closing, "record_events", lambda *a, **k: None)


# --- buy-now: never oversold ---------------------------------------------------------------


def _buy_now_rush(app, quantity: str = "2000", step: str = "50", attempts: int = 4):
    with app.app_context(), session_scope(app) as s:
        lot = buy_now_lot(s, quantity=quantity, min_order=step)
        lot_id = lot.id
    actors = buyers(app, BUYERS)
    accepted: list[int] = []
    refused = Counter()

    def buy(i: int) -> None:
        for _ in range(attempts):
            try:
                with session_scope(app) as s:
                    award = services.buy_now(s, actors[i], lot_id, D(step), "road_base")
                    award_id = award.id
                accepted.append(award_id)
            except (services.BidConflict, services.BidRefused) as exc:
                refused[next(iter(exc.codes)).value] += 1

    errors, seconds = run_threads(app, BUYERS, buy)
    with app.app_context(), session_scope(app) as s:
        lot = s.get(Lot, lot_id)
        awarded = s.scalar(select(func.sum(Award.quantity)).where(Award.lot_id == lot_id))
        count = s.scalar(select(func.count()).select_from(Award).where(Award.lot_id == lot_id))
        chain_ok = verify(s, chain_key=f"lot:{lot_id}").ok
        return {
            "quantity": lot.quantity,
            "remaining": lot.remaining,
            "status": lot.status,
            "awarded": awarded or D(0),
            "awards": count,
            "accepted": len(accepted),
            "refused": dict(refused),
            "errors": errors,
            "seconds": seconds,
            "chain_ok": chain_ok,
        }


def test_many_buyers_buying_now_never_oversell_a_lot(committed_app):
    backend, app = committed_app
    r = _buy_now_rush(app)
    assert r["errors"] == []
    assert r["awarded"] == r["quantity"] - r["remaining"]
    assert r["awards"] == r["accepted"] == 40  # 2,000 t in lots of 50 t, sold exactly out
    assert r["remaining"] == 0 and r["status"] == "awarded"
    assert set(r["refused"]) <= {"sold_out", "quantity_above_remaining"}
    assert r["chain_ok"]
    record_figure(
        f"buy_now_{backend}",
        buyers=BUYERS,
        accepted=r["accepted"],
        refused=sum(r["refused"].values()),
        purchases_per_s=round((r["accepted"] + sum(r["refused"].values())) / r["seconds"]),
        lost_updates=0,
    )


def test_control_buying_now_without_the_lot_lock_oversells(committed_app, monkeypatch):
    backend, app = committed_app
    if backend != "postgresql":
        pytest.skip("SQLite's BEGIN IMMEDIATE serialises every writer: no race to show")
    unlocked(monkeypatch)
    r = _buy_now_rush(app, quantity="100000", step="50", attempts=5)
    lost = (r["awarded"] - (r["quantity"] - r["remaining"])) / D(50)
    record_figure(
        "buy_now_control_without_lock",
        accepted=r["accepted"],
        lost_decrements=int(lost),
        lost_pct=round(float(lost) / max(r["accepted"], 1) * 100, 1),
    )
    assert lost > 0, "without the lock some decrements of remaining must be lost"


# --- auction: no lost bid, state equal to a sequential replay ------------------------------


def replay(lot_terms: rules.AuctionTerms, producer_id: int, bids: list[Bid]):
    """Replay the stored bids in commit (id) order through the pure rules.

    Returns the refusals the rules would have given each bid, the live bids and the close.
    """
    live: dict[int, rules.BidView] = {}
    close = lot_terms.closes_at
    problems = []
    for b in bids:
        terms = rules.AuctionTerms(**{**lot_terms.__dict__, "closes_at": close})
        replacing = live.get(b.company_id)
        refusals = rules.validate_bid(
            terms,
            list(live.values()),
            b.company_id,
            producer_id,
            b.price,
            b.quantity,
            b.placed_at,
            current_close=close,
            replacing=replacing,
            min_quantity=b.min_quantity,
        )
        if refusals:
            problems.append((b.id, [r.code.value for r in refusals]))
        close = rules.extended_close(terms, close, b.placed_at) if b.placed_at < close else close
        live[b.company_id] = view(b)
    return problems, {v.id for v in live.values()}, close


def _auction_war(app, attempts: int = 12):
    now = utcnow()
    with app.app_context(), session_scope(app) as s:
        lot = auction_lot(
            s,
            quantity="100",
            min_order="10",
            price="-30.00",  # a disposal: bidders ask for ever smaller fees
            increment="0.50",
            opens_at=now - dt.timedelta(minutes=10),
            # Close within the anti-sniping window so every accepted bid extends it.
            closes_at=now + dt.timedelta(minutes=2),
            hard_close_at=now + dt.timedelta(hours=2),
            anti_snipe=5,
        )
        lot_id, producer_id = lot.id, lot.producer_id
        initial = terms_of(lot)
    actors = buyers(app, BIDDERS)
    accepted: list[int] = []
    refused = Counter()
    rng = random.Random(7)

    def war(i: int) -> None:
        # Each company keeps one quantity, so its raises never shrink the bid.
        quantity = D([20, 40, 60, 100][i % 4])
        for n in range(attempts):
            with session_scope(app) as s:
                live = lots.live_bids(s, lot_id)
                minimum = rules.minimum_next_price(
                    terms_of(s.get(Lot, lot_id)), [view(b) for b in live]
                )
                mine = next((b for b in live if b.company_id == actors[i].company_id), None)
                if mine is not None:
                    minimum = max(minimum, mine.price + D("0.50"))
                version = max((b.id for b in live), default=0)
            price = minimum + D("0.50") * rng.randint(0, 2)
            try:
                with session_scope(app) as s:
                    result = services.place_bid(
                        s,
                        actors[i],
                        lot_id,
                        price,
                        quantity,
                        "cement_iron_corrective",
                        seen_version=version,
                        idempotency_key=f"{i}-{n}",
                    )
                    bid_id = result.bid.id
                accepted.append(bid_id)
            except (services.BidConflict, services.BidRefused) as exc:
                refused[next(iter(exc.codes)).value] += 1

    errors, seconds = run_threads(app, BIDDERS, war)
    with app.app_context(), session_scope(app) as s:
        lot = s.get(Lot, lot_id)
        stored = list(s.scalars(select(Bid).where(Bid.lot_id == lot_id).order_by(Bid.id)))
        problems, live_ids, close = replay(initial, producer_id, stored)
        events = Counter(
            s.scalars(select(AuditEvent.action).where(AuditEvent.chain_key == f"lot:{lot_id}"))
        )
        return {
            "accepted": accepted,
            "refused": dict(refused),
            "errors": errors,
            "seconds": seconds,
            "stored": [b.id for b in stored],
            "keys": Counter((b.company_id, b.idempotency_key) for b in stored),
            "db_live": {b.id for b in stored if b.status is BidStatus.ACTIVE},
            "replay_problems": problems,
            "replay_live": live_ids,
            "replay_close": close,
            "closes_at": lot.closes_at,
            "events": events,
            "chain_ok": verify(s, chain_key=f"lot:{lot_id}").ok,
        }


def test_many_bidders_on_one_auction_lose_no_bid_and_match_a_sequential_replay(committed_app):
    backend, app = committed_app
    r = _auction_war(app)
    assert r["errors"] == []
    assert sorted(r["accepted"]) == r["stored"]  # every accepted bid stored, nothing else
    assert max(r["keys"].values()) == 1  # no duplicated submission
    assert r["replay_problems"] == []  # each bid was valid against the bids committed before it
    assert r["db_live"] == r["replay_live"]
    assert r["closes_at"] == r["replay_close"]  # no extension lost
    assert r["events"]["trading:bid:placed"] + r["events"]["trading:bid:raised"] == len(r["stored"])
    assert r["chain_ok"]
    assert set(r["refused"]) <= {
        "lost_race",
        "price_below_minimum",
        "price_not_raised",
        "bid_not_live",
    }
    attempts = len(r["accepted"]) + sum(r["refused"].values())
    record_figure(
        f"auction_{backend}",
        bidders=BIDDERS,
        attempts=attempts,
        accepted=len(r["accepted"]),
        refused=r["refused"],
        accepted_bids_per_s=round(len(r["accepted"]) / r["seconds"]),
        attempts_per_s=round(attempts / r["seconds"]),
        lost_bids=0,
        replay_violations=0,
    )


def test_control_bidding_without_the_lot_lock_breaks_the_replay(committed_app, monkeypatch):
    backend, app = committed_app
    if backend != "postgresql":
        pytest.skip("SQLite's BEGIN IMMEDIATE serialises every writer: no race to show")
    unlocked(monkeypatch)
    r = _auction_war(app)
    lost_extension = r["closes_at"] != r["replay_close"]
    record_figure(
        "auction_control_without_lock",
        accepted=len(r["accepted"]),
        replay_violations=len(r["replay_problems"]),
        lost_extension=lost_extension,
        errors=len(r["errors"]),
    )
    assert r["replay_problems"] or lost_extension or r["errors"]


# --- closing: exactly once, whatever the number of closers -----------------------------------


def _due_lots(app, count: int, bids_each: int = 3) -> list[int]:
    now = utcnow()
    with app.app_context(), session_scope(app) as s:
        producer, _owner = make_company(s, producer=True, buyer=False)
        companies = [make_company(s, producer=False, buyer=True)[0] for _ in range(bids_each)]
        ids = []
        for i in range(count):
            lot = auction_lot(
                s,
                producer,
                quantity="100",
                opens_at=now - dt.timedelta(hours=2),
                closes_at=now - dt.timedelta(seconds=1 + i),
            )
            for k, company in enumerate(companies):
                s.add(
                    Bid(
                        lot_id=lot.id,
                        company_id=company.id,
                        price=D(100 + 5 * k),
                        quantity=D(40),
                        end_use="steel",
                        status=BidStatus.ACTIVE,
                        placed_at=now - dt.timedelta(hours=1, minutes=k),
                        filled_quantity=D(0),
                    )
                )
            ids.append(lot.id)
        return ids


def _closers(app, workers: int):
    errors, seconds = run_threads(app, workers, lambda i: tasks.close_due(app))
    return errors, seconds


def _closing_outcome(app, ids):
    with app.app_context(), session_scope(app) as s:
        closed_events = Counter(
            s.scalars(
                select(AuditEvent.entity_id).where(
                    AuditEvent.action == "trading:lot:closed", AuditEvent.entity_type == "lot"
                )
            )
        )
        closings = Counter(s.scalars(select(LotClosing.lot_id)))
        mismatches = []
        for lot_id in ids:
            lot = s.get(Lot, lot_id)
            stored = list(s.scalars(select(Bid).where(Bid.lot_id == lot_id)))
            want = rules.allocate(lot.quantity, [view(b) for b in stored], min_order=lot.min_order)
            got = sorted(
                (a.bid_id, a.quantity)
                for a in s.scalars(select(Award).where(Award.lot_id == lot_id))
            )
            if got != sorted((f.bid_id, f.quantity) for f in want.winners):
                mismatches.append(lot_id)
        statuses = Counter(s.get(Lot, i).status.value for i in ids)
    return closed_events, closings, mismatches, statuses


def test_parallel_closers_close_every_due_lot_exactly_once(committed_app):
    backend, app = committed_app
    ids = _due_lots(app, 60)
    app.config["TRADING_CLOSE_BATCH"] = 7  # several batches per closer, so they interleave
    errors, seconds = _closers(app, 6)
    assert errors == []
    closed_events, closings, mismatches, statuses = _closing_outcome(app, ids)
    assert all(closed_events[str(i)] == 1 for i in ids)
    assert all(closings[i] == 1 for i in ids)
    assert mismatches == []
    assert statuses == {"awarded": len(ids)}
    record_figure(f"closing_{backend}", lots=len(ids), closers=6, seconds=round(seconds, 3))


def test_control_closers_without_locks_collide(committed_app, monkeypatch):
    backend, app = committed_app
    if backend != "postgresql":
        pytest.skip("SQLite's BEGIN IMMEDIATE serialises every writer: no race to show")
    ids = _due_lots(app, 60)
    monkeypatch.setattr(
        closing,
        "due_lot_ids",
        lambda session, now, limit: list(
            session.scalars(
                select(Lot.id)
                .where(Lot.status == "published", Lot.closes_at <= now)
                .order_by(Lot.closes_at, Lot.id)
                .limit(limit)
            )
        ),
    )
    unlocked(monkeypatch)
    app.config["TRADING_CLOSE_BATCH"] = 7
    errors, _seconds = _closers(app, 6)
    closed_twice = [lot_id for lot_id in ids if _awards_count(app, lot_id) > 3]
    record_figure(
        "closing_control_without_lock", errors=len(errors), lots_allocated_twice=len(closed_twice)
    )
    # Without the lock the closers allocate the same lots: the unique closing row turns most
    # of it into errors, and whatever got through has awards twice.
    assert errors or closed_twice


def _awards_count(app, lot_id: int) -> int:
    with app.app_context(), session_scope(app) as s:
        return s.scalar(select(func.count()).select_from(Award).where(Award.lot_id == lot_id))


@pytest.mark.skipif(not os.environ.get("REDIS_TEST_URL"), reason="REDIS_TEST_URL is not set")
def test_with_redis_one_worker_runs_each_closing_tick(committed_app):
    from exchange.jobs import PeriodicJob, run_once

    _backend, app = committed_app
    app.config["REDIS_URL"] = os.environ["REDIS_TEST_URL"]
    name = f"trading-close-test-{uuid.uuid4().hex[:8]}"  # parallel test runs share Redis
    ran = []
    job = PeriodicJob(name, 30, lambda a: ran.append(tasks.close_due(a)))
    errors, _ = run_threads(app, 4, lambda i: run_once(app, job))
    assert errors == [] and len(ran) == 1
