"""Trading: accepted bids per second on one hot lot (ceiling, service, HTTP) and closing at scale.

All on PostgreSQL, 16 concurrent clients (16 processes for the ceiling and the service), each
measured in three trials (``BENCH_TRADING_TRIALS``) whose median is reported. The ceiling is a
bare SQLAlchemy loop that locks the lot row FOR UPDATE, inserts a bid row and updates the lot,
measured in the same run as the service layer (``place_bid``) and the form endpoint under
gunicorn (2 sync workers, loopback), posted by ``benchmarks.loadgen`` from a process of its
own; the accepted count is read back from the database, not inferred from the redirects.
Every client raises its own bid by one increment on a lot too large to fill, so every bid is
valid and no client races another on price: the figure is the lot's serialised throughput.
Closing: 10,000 due auctions with 10 bids each, closed by two closers in parallel. The closers
are two processes (forked, each with its own connection pool), as in a deployment where the
closing job runs in worker processes; two threads of one process would share one interpreter
lock and measure that instead.
"""

from __future__ import annotations

import datetime as dt
import json
import multiprocessing
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from decimal import Decimal
from decimal import Decimal as D
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from sqlalchemy import func, insert, select, text

from benchmarks.harness import Result, median, percentile
from exchange import create_app
from exchange.accounts.models import Company, Membership, Site, User
from exchange.accounts.services import hash_password
from exchange.actor import Actor
from exchange.db import make_engine, normalize_url, session_scope, utcnow
from exchange.listings.models import Lot, LotEndUse
from exchange.listings.rules import unit_vector
from exchange.schema import upgrade
from exchange.trading import services, tasks
from exchange.trading.models import Bid, LotClosing

CLIENTS = 16
PER_CLIENT = int(os.environ.get("BENCH_BIDS_PER_CLIENT", "60"))
HTTP_PER_CLIENT = int(os.environ.get("BENCH_HTTP_BIDS_PER_CLIENT", "100"))
HTTP_WARMUP_PER_CLIENT = 10
TRIALS = int(os.environ.get("BENCH_TRADING_TRIALS", "3"))
HTTP_WORKERS = int(os.environ.get("BENCH_HTTP_WORKERS", "2"))
CLOSE_LOTS = int(os.environ.get("BENCH_CLOSE_LOTS", "10000"))
BIDS_PER_LOT = 10
PASSWORD = "bench-password-1"  # noqa: S105 (a throwaway database)
ROOT = Path(__file__).resolve().parent.parent


def _scratch(url: str) -> tuple[str, object]:
    """A scratch PostgreSQL database of this benchmark's own (dropped afterwards)."""
    name = f"rmx_tradebench_{uuid.uuid4().hex[:8]}"
    admin = make_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f'CREATE DATABASE "{name}"'))
    scratch = re.sub(r"/[^/]*$", f"/{name}", normalize_url(url))

    def drop() -> None:
        with admin.connect() as c:
            c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    return scratch, drop


def _companies(s, n: int, *, producer: bool = False) -> list[tuple[int, int, str]]:
    """``n`` verified companies with an owner each: (company id, user id, e-mail)."""
    made = []
    password = hash_password(PASSWORD)
    for _ in range(n):
        tag = uuid.uuid4().hex[:10]
        company = Company(
            legal_name_zh=f"压测公司{tag}",
            uscc=f"9{tag.upper()}0000000"[:18],
            is_producer=producer,
            is_buyer=not producer,
            sector="steel",
            province="37",
            city="滨州市",
            contact_name="bench",
            contact_phone="0",
            contact_email=f"{tag}@bench.test",
            verification_status="verified",
        )
        company.sites.append(
            Site(name="yard", province="37", city="滨州市", latitude=D(37), longitude=D(118))
        )
        user = User(
            email=f"{tag}@bench.test",
            display_name="bench",
            password_hash=password,
            email_confirmed_at=utcnow(),
        )
        s.add_all([company, user])
        s.flush()
        s.add(Membership(user_id=user.id, company_id=company.id, role="owner"))
        made.append((company.id, user.id, user.email))
    s.flush()
    return made


#: The bench sites' place (37° N, 118° E) as the catalogue's unit vector: the lots table's
#: nearest-first index needs every row to have one.
_GEO = unit_vector(D(37), D(118))


def _lot_row(producer_id: int, site_id: int, **fields: object) -> dict[str, object]:
    now = utcnow()
    row: dict[str, object] = {
        "geo_x": _GEO[0],
        "geo_y": _GEO[1],
        "geo_z": _GEO[2],
        "producer_id": producer_id,
        "site_id": site_id,
        "material_code": "rm_bayer_filter_cake",
        "material_family": "red_mud",
        "province": "37",
        "title_zh": "压测赤泥",
        "quantity": D(1_000_000),
        "remaining": D(1_000_000),
        "basis": "dry",
        "min_order": D(10),
        "recurrence": "one_off",
        "available_from": dt.date(2027, 1, 1),
        "sale_mode": "auction",
        "price": D("0.00"),
        "min_increment": D("0.50"),
        "currency": "CNY",
        "opens_at": now - dt.timedelta(hours=1),
        "closes_at": now + dt.timedelta(hours=6),
        "hard_close_at": now + dt.timedelta(hours=7),
        "anti_snipe_minutes": 5,
        "delivery_terms": "ex_works",
        "status": "published",
        "published_at": now,
    }
    row.update(fields)
    return row


def _hot_lot(app) -> tuple[int, list[tuple[int, int, str]]]:
    with app.app_context(), session_scope(app) as s:
        [(producer_id, _u, _e)] = _companies(s, 1, producer=True)
        site_id = s.scalar(select(Site.id).where(Site.company_id == producer_id))
        lot_id = s.scalar(insert(Lot).returning(Lot.id), [_lot_row(producer_id, site_id)])
        s.execute(
            insert(LotEndUse),
            [{"lot_id": lot_id, "end_use": "steel", "fitness": "fit", "gated": False}],
        )
        return lot_id, _companies(s, CLIENTS)


def _client(app, work, i: int, start, results) -> None:
    """One client process: its own connections (the forked pool is left to the parent)."""
    engine = app.extensions["exchange.engine"]
    engine.dispose(close=False)
    try:
        start.wait()
        results.put(list(work(i)))
    except BaseException as exc:  # reported by the parent
        results.put(repr(exc))
    finally:
        engine.dispose()


def _hammer(app, work, clients: int) -> tuple[list[float], float, Counter]:
    """``clients`` processes run ``work`` at once, each with its own connections, as separate
    clients would (threads of one interpreter would also share its lock); the clock runs from
    their common start until the last one has reported."""
    context = multiprocessing.get_context("fork")
    start, results = context.Barrier(clients + 1), context.Queue()
    processes = [
        context.Process(target=_client, args=(app, work, i, start, results)) for i in range(clients)
    ]
    for process in processes:
        process.start()
    start.wait()
    began = time.perf_counter()
    collected = [results.get(timeout=600) for _ in processes]
    seconds = time.perf_counter() - began
    for process in processes:
        process.join()
    errors = [r for r in collected if isinstance(r, str)]
    if errors:
        raise RuntimeError(f"bench client failed: {errors[0]}")
    samples = [ms for r in collected for ms, _outcome in r]
    outcomes = Counter(outcome for r in collected for _ms, outcome in r)
    return samples, seconds, outcomes


def bench_ceiling(app, lot_id: int, bidders) -> tuple[list[float], float, Counter]:
    def work(i: int):
        for n in range(PER_CLIENT):
            t0 = time.perf_counter()
            with session_scope(app) as s:
                lot = s.scalars(select(Lot).where(Lot.id == lot_id).with_for_update()).one()
                s.add(
                    Bid(
                        lot_id=lot_id,
                        company_id=bidders[i][0],
                        price=D(n),
                        quantity=D(1),
                        end_use="steel",
                        status="lost",
                        placed_at=utcnow(),
                        filled_quantity=D(0),
                    )
                )
                s.flush()
                lot.updated_at = utcnow()
            yield (time.perf_counter() - t0) * 1000, "ok"

    return _hammer(app, work, CLIENTS)


def bench_service(
    app, lot_id: int, bidders, start: Decimal = D("0.00")
) -> tuple[list[float], float, Counter]:
    """Every client raises its own bid from ``start`` (above its bid of an earlier trial)."""

    def work(i: int):
        actor = Actor(bidders[i][1], bidders[i][0], role="owner")
        price = start
        for _n in range(PER_CLIENT):
            t0 = time.perf_counter()
            try:
                with app.app_context(), session_scope(app) as s:
                    services.place_bid(
                        s, actor, lot_id, price, D(100), "steel", idempotency_key=uuid.uuid4().hex
                    )
                outcome = "accepted"
            except services.BidConflict:
                outcome = "409"
            except services.BidRefused:
                outcome = "422"
            price += D("0.50")
            yield (time.perf_counter() - t0) * 1000, outcome

    return _hammer(app, work, CLIENTS)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def bench_http(app, url: str, lot_id: int, bidders) -> list[tuple[list[float], float, Counter]]:
    """``TRIALS`` timed loads on one server after a warm-up, each at prices of its own."""
    import requests

    port = _free_port()
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "SECRET_KEY": "bench-secret",
        "RATELIMIT_ENABLED": "0",
        "RUN_JOBS_IN_PROCESS": "0",
    }
    server = subprocess.Popen(  # noqa: S603 (our own gunicorn, fixed arguments)
        [
            str(ROOT / ".venv" / "bin" / "gunicorn"),
            "-w",
            str(HTTP_WORKERS),
            "-k",
            "sync",
            "-b",
            f"127.0.0.1:{port}",
            "--log-level",
            "warning",
            "exchange:create_app()",
        ],
        cwd=ROOT,
        env=env,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                requests.get(base + "/healthz", timeout=5)
                break
            except requests.RequestException:
                time.sleep(0.1)
        clients = []
        for _company, _user, email in bidders:
            web = requests.Session()
            page = web.get(base + "/login").text
            token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)
            web.post(
                base + "/login",
                data={"email": email, "password": PASSWORD, "csrf_token": token},
                allow_redirects=False,
            )
            page = web.get(f"{base}/trading/lots/{lot_id}").text
            token = re.search(r'name="trade-csrf_token" type="hidden" value="([^"]+)"', page)
            clients.append((web, token.group(1)))

        # The clients post from a process of their own (as the catalogue's load does): a
        # thread pool of an HTTP library in this process would take the CPU the server needs.
        def post(per_connection: int, price: str) -> dict[str, Any]:
            spec = {
                "url": f"{base}/trading/lots/{lot_id}/bid",
                "per_connection": per_connection,
                "connections": [
                    {
                        "headers": [  # the session is bound to the browser that logged in
                            "Cookie: " + "; ".join(f"{k}={v}" for k, v in web.cookies.items()),
                            f"User-Agent: {web.headers['User-Agent']}",
                        ],
                        "body": urlencode(
                            {
                                "trade-csrf_token": token,
                                "trade-quantity": "100",
                                "trade-end_use": "steel",
                            }
                        )
                        + "&trade-price={price}&trade-key={key}",
                        "price": price,
                        "step": "0.50",
                    }
                    for web, token in clients
                ],
            }
            with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
                json.dump(spec, f)
            try:
                output = subprocess.run(  # noqa: S603 (our own load generator, fixed arguments)
                    [sys.executable, "-m", "benchmarks.loadgen", "--posts", f.name],
                    cwd=ROOT,
                    capture_output=True,
                    text=True,
                    check=False,
                )
            finally:
                os.unlink(f.name)
            if output.returncode != 0:
                raise RuntimeError(f"load generator failed: {output.stderr[-2000:]}")
            return dict(json.loads(output.stdout))

        # Warm-up, not timed: each worker's first bids prepare its statements and caches.
        post(HTTP_WARMUP_PER_CLIENT, "500.00")  # above anything the service run left
        trials = []
        for trial in range(TRIALS):
            low = D(1000 * (trial + 1))  # above anything the warm-up or an earlier trial left
            result = post(HTTP_PER_CLIENT, f"{low}")
            # A redirect is also what a lost session gets (to the login page): count the bids
            # the database holds from this trial instead of trusting the status codes.
            with session_scope(app) as s:
                stored = s.scalar(
                    select(func.count()).where(
                        Bid.lot_id == lot_id, Bid.price >= low, Bid.price < low + 1000
                    )
                )
            outcomes = Counter({k: v for k, v in result["codes"].items() if k != "302"})
            outcomes["accepted"] = int(stored or 0)
            outcomes["other 302"] = result["codes"].get("302", 0) - outcomes["accepted"]
            trials.append((result["latencies_ms"], result["seconds"], +outcomes))
        return trials
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=20)


def _due_lots(app, count: int) -> None:
    now = utcnow()
    with app.app_context(), session_scope(app) as s:
        [(producer_id, _u, _e)] = _companies(s, 1, producer=True)
        site_id = s.scalar(select(Site.id).where(Site.company_id == producer_id))
        bidders = [c for c, _u, _e in _companies(s, BIDS_PER_LOT)]
        for start in range(0, count, 1000):
            rows = [
                _lot_row(
                    producer_id,
                    site_id,
                    quantity=D(100),
                    remaining=D(100),
                    opens_at=now - dt.timedelta(hours=2),
                    closes_at=now - dt.timedelta(seconds=1 + i),
                    hard_close_at=now,
                )
                for i in range(start, min(start + 1000, count))
            ]
            ids = s.scalars(insert(Lot).returning(Lot.id, sort_by_parameter_order=True), rows).all()
            s.execute(
                insert(Bid),
                [
                    {
                        "lot_id": lot_id,
                        "company_id": company_id,
                        "price": D(10 * k),
                        "quantity": D(20),
                        "end_use": "steel",
                        "status": "active",
                        "placed_at": now - dt.timedelta(hours=1, seconds=k),
                        "filled_quantity": D(0),
                    }
                    for lot_id in ids
                    for k, company_id in enumerate(bidders)
                ],
            )


def bench_closing(app, closers: int = 2) -> tuple[float, int, int]:
    """``closers`` processes run the closing job at once; returns (seconds, closings, doubles
    plus errors). The clock runs from their common start to the last one's exit."""
    _due_lots(app, CLOSE_LOTS)

    def close(_i: int) -> list[tuple[float, str]]:
        with app.app_context():
            tasks.close_due(app)
        return []  # nothing per closing: the clock and the closings table tell

    context = multiprocessing.get_context("fork")
    start, queue = context.Barrier(closers + 1), context.Queue()
    processes = [
        context.Process(target=_client, args=(app, close, i, start, queue)) for i in range(closers)
    ]
    for p in processes:
        p.start()
    start.wait()
    began = time.perf_counter()
    for p in processes:
        p.join()
    seconds = time.perf_counter() - began
    reported = [queue.get(timeout=5) for _ in range(queue.qsize())]
    errors = [r for r in reported if isinstance(r, str)]  # a client reports its error's repr
    errors += [f"exit code {p.exitcode}" for p in processes if p.exitcode and not errors]
    with app.app_context(), session_scope(app) as s:
        closings = s.scalar(select(func.count()).select_from(LotClosing)) or 0
        distinct = s.scalar(select(func.count(func.distinct(LotClosing.lot_id)))) or 0
    if errors:
        print(f"closing errors: {errors[:3]}", file=sys.stderr)
    return seconds, closings, closings - distinct + len(errors)


def _median_trial(trials: list[tuple[list[float], float, Counter]]) -> tuple[Any, str]:
    """The trial with the median throughput, and every trial's throughput in words.

    This machine's throughput for the same load varies by tens of per cent from one run to
    the next; the median of several trials, with all of them shown, says more than one run.
    """
    ranked = sorted(trials, key=lambda t: _rate(*t))
    rates = ", ".join(f"{_rate(*t):.0f}" for t in trials)
    return ranked[len(ranked) // 2], f"trials {rates} bids/s (median shown)"


def _rate(samples: list[float], seconds: float, outcomes: Counter) -> float:
    return outcomes["accepted"] / seconds if "accepted" in outcomes else len(samples) / seconds


def run(url: str) -> list[Result]:
    url, drop = _scratch(url)
    try:
        engine = make_engine(url)
        upgrade(engine)
        engine.dispose()
        app = create_app(
            {
                "DATABASE_URL": url,
                "TESTING": True,
                "RUN_JOBS_IN_PROCESS": False,
                "RATELIMIT_ENABLED": False,
            }
        )
        lot_id, bidders = _hot_lot(app)
        # Ceiling and service trials alternate, so that both meet the same conditions.
        ceilings, services_ = [], []
        for trial in range(TRIALS):
            ceilings.append(bench_ceiling(app, lot_id, bidders))
            services_.append(bench_service(app, lot_id, bidders, start=D(100 * trial)))
        ceiling, ceiling_rates = _median_trial(ceilings)
        service, service_rates = _median_trial(services_)
        http_trials = bench_http(app, url, lot_id, bidders)
        http, http_rates = _median_trial(http_trials)
        ceiling_rate, service_rate, http_rate = _rate(*ceiling), _rate(*service), _rate(*http)
        seconds, closings, doubles = bench_closing(app)
        app.extensions["exchange.engine"].dispose()
    finally:
        drop()
    share = service_rate / ceiling_rate
    http_errors = {  # any trial's: a failed request is never averaged away
        k: v for t in http_trials for k, v in t[2].items() if k not in ("accepted", "409", "422")
    }
    return [
        Result(
            "bid ceiling: lock+insert+update (pg)",
            f"{CLIENTS} clients × {PER_CLIENT}",
            median(ceiling[0]),
            percentile(ceiling[0], 99),
            ceiling_rate,
            "bids/s",
            "reference",
            True,
            ceiling_rates,
        ),
        Result(
            "place_bid service, one hot lot (pg)",
            f"{CLIENTS} clients × {PER_CLIENT}",
            median(service[0]),
            percentile(service[0], 99),
            service_rate,
            "bids/s",
            "≥ 60 % of the ceiling",
            share >= 0.6,
            f"{share:.0%} of the ceiling (medians); {service_rates}; outcomes {dict(service[2])}",
        ),
        Result(
            f"bid form via gunicorn {HTTP_WORKERS} sync (pg)",
            f"{CLIENTS} clients × {HTTP_PER_CLIENT}",
            median(http[0]),
            percentile(http[0], 99),
            http_rate,
            "bids/s",
            "≥ 200 bids/s, p99 ≤ 150 ms",
            http_rate >= 200 and percentile(http[0], 99) <= 150 and not http_errors,
            f"{http_rates}; outcomes {dict(http[2])}; errors {http_errors or 'none'}",
        ),
        Result(
            "close due auctions, 2 closers (pg)",
            f"{CLOSE_LOTS} lots × {BIDS_PER_LOT} bids",
            None,
            None,
            CLOSE_LOTS / seconds,
            "lots/s",
            "≤ 10 s, each lot once",
            seconds <= 10 and closings == CLOSE_LOTS and doubles == 0,
            f"{seconds:.1f} s; {closings} closings, {doubles} doubles/errors",
        ),
    ]
