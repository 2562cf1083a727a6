"""The public catalogue on PostgreSQL at 100,000 lots.

1. Search: spec filters + sort + page through ``search_lots`` (the web page's and the API's
   query), p50/p95 over a mix of filters, and the indexes each statement's plan uses (EXPLAIN).
2. The catalogue page (50 lots, a filter, a logged-in buyer) under gunicorn with 2 sync
   workers, loaded from a second process on loopback (``benchmarks.loadgen``, 32 keep-alive
   connections) beside a bare ``hello`` route of the same app in the same run. The same URL is
   loaded again and again, so after each worker's first request the page's results and filter
   form come from that worker's fragment cache (keyed by the catalogue version, see
   ``exchange.listings.freshness``); the uncached search is what part 1 measures. When
   ``wrk`` is installed the same two URLs are loaded with it too, and the target must hold
   for both clients (see ``_wrk``).

The benchmark creates its own database and drops it at the end. Sizes: ``BENCH_CATALOGUE_LOTS``
(default 100,000), ``BENCH_HTTP_SECONDS`` per load run (default 10).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.orm import Session

from benchmarks.bench_audit import _scratch
from benchmarks.bench_matching import COMMON, PRODUCERS, PROFILES
from benchmarks.harness import Result, median, percentile
from exchange.accounts.models import Company, Membership, Site, User
from exchange.accounts.services import hash_password
from exchange.actor import Actor
from exchange.catalog.materials import MATERIALS
from exchange.catalog.rules import InvalidAssayError, grade
from exchange.db import make_engine
from exchange.listings.rules import unit_vector
from exchange.listings.search import CatalogueQuery, Sort, SpecFilter, search_lots
from exchange.schema import upgrade

ROOT = Path(__file__).resolve().parent.parent
LOTS = int(os.environ.get("BENCH_CATALOGUE_LOTS", "100000"))
HTTP_SECONDS = float(os.environ.get("BENCH_HTTP_SECONDS", "10"))
CONNECTIONS = 32
REPEAT = 15
TEMPLATES = 600
SEED = 20261128
PASSWORD = "bench-password-1"
USER_AGENT = "rmx-bench/1"
D = Decimal

#: Province of each producing area in ``PRODUCERS`` (Shandong, Shanxi, Henan, Guangxi, ...).
PROVINCES = ["37", "37", "14", "14", "41", "41", "45", "52", "53"]
MATERIAL = {
    "bayer_high_fe": "rm_bayer_filter_cake",
    "bayer": "rm_bayer_dried",
    "sintering": "rm_sintering_filter_cake",
    "combined": "rm_combined_dried",
}
TITLES = {
    "bayer_high_fe": ("高铁拜耳法赤泥滤饼", "High-iron Bayer red mud filter cake"),
    "bayer": ("拜耳法赤泥干料", "Dried Bayer red mud"),
    "sintering": ("烧结法赤泥滤饼", "Sintering red mud filter cake"),
    "combined": ("联合法赤泥", "Combined-process red mud"),
    "product": ("赤泥选铁精粉", "Iron concentrate from red mud"),
}

#: (label, query) — spec filters with a sort and a page, rare and common, as buyers search.
QUERIES = [
    (
        "Fe2O3≥40, cheapest",
        CatalogueQuery(specs=(SpecFilter("Fe2O3", D(40)),), sort=Sort.PRICE_ASC),
    ),
    (
        "Fe2O3≥40 Na2O≤1, newest p2",
        CatalogueQuery(specs=(SpecFilter("Fe2O3", D(40)), SpecFilter("Na2O", None, D(1))), page=2),
    ),
    (
        "red mud CaO≥30, largest",
        CatalogueQuery(
            family="red_mud", specs=(SpecFilter("CaO", D(30)),), sort=Sort.QUANTITY_DESC
        ),
    ),
    (
        "cement fit Fe2O3≥45, cheapest",
        CatalogueQuery(
            end_use="cement_iron_corrective",
            specs=(SpecFilter("Fe2O3", D(45)),),
            sort=Sort.PRICE_ASC,
        ),
    ),
    (
        "Shandong MgO≤1, newest p3",
        CatalogueQuery(province="37", specs=(SpecFilter("MgO", None, D(1)),), page=3),
    ),
    (
        "Fe2O3≥88 (rare), dearest",
        CatalogueQuery(specs=(SpecFilter("Fe2O3", D(88)),), sort=Sort.PRICE_DESC),
    ),
    ("Fe2O3≥95 (none)", CatalogueQuery(specs=(SpecFilter("Fe2O3", D(95)),))),
    (
        "price≤0 Fe2O3 30–45, nearest",
        CatalogueQuery(
            price_max=D(0),
            specs=(SpecFilter("Fe2O3", D(30), D(45)),),
            sort=Sort.DISTANCE,
        ),
    ),
    (
        "text 滤饼 + Na2O≤2, cheapest",
        CatalogueQuery(text="滤饼", specs=(SpecFilter("Na2O", None, D(2)),), sort=Sort.PRICE_ASC),
    ),
]
#: The page loaded over HTTP: a spec filter and a sort, as a buyer would set them.
PAGE_QUERY = "family=red_mud&spec_param=Fe2O3&spec_min=40&sort=price_asc"


# --- data ------------------------------------------------------------------------------------


def _copy(conn: Any, table: str, columns: list[str], rows: list[tuple[Any, ...]]) -> None:
    raw = conn.connection.dbapi_connection
    with (
        raw.cursor() as cursor,
        cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy,
    ):
        for row in rows:
            copy.write_row(row)


def _companies(session: Session, rng: random.Random) -> tuple[list[Any], Company, User]:
    producers = []
    for i in range(200):
        area = rng.randrange(len(PRODUCERS))
        (lat, lon), kind = PRODUCERS[area]
        company = Company(
            legal_name_zh=f"基准生产商{i}",
            uscc=f"P{i:017d}",
            is_producer=True,
            is_buyer=False,
            sector="alumina",
            province=PROVINCES[area],
            city="基准市",
            contact_name="b",
            contact_phone="1",
            contact_email="b@x",
            verification_status="verified",
        )
        site = Site(
            name="厂区",
            province=PROVINCES[area],
            city="基准市",
            latitude=D(f"{lat + rng.uniform(-1, 1):.4f}"),
            longitude=D(f"{lon + rng.uniform(-1, 1):.4f}"),
        )
        company.sites.append(site)
        session.add(company)
        producers.append((company, site, kind))
    buyer = Company(
        legal_name_zh="基准水泥",
        uscc="B00000000000000001",
        is_producer=False,
        is_buyer=True,
        sector="cement",
        province="13",
        city="唐山市",
        contact_name="b",
        contact_phone="1",
        contact_email="b@x",
        verification_status="verified",
    )
    buyer.sites.append(
        Site(name="水泥厂", province="13", city="唐山", latitude=D("39.63"), longitude=D("118.18"))
    )
    user = User(
        email="buyer@bench.test",
        display_name="Bench Buyer",
        password_hash=hash_password(PASSWORD),
        email_confirmed_at=dt.datetime.now(dt.UTC),
        locale="zh_Hans_CN",
    )
    session.add_all([buyer, user])
    session.flush()
    session.add(Membership(user_id=user.id, company_id=buyer.id, role="trader"))
    session.commit()
    return [(c.id, s, kind) for c, s, kind in producers], buyer, user


def _graded(measured: dict[str, Decimal], solid_waste: bool) -> Any:
    """Grade ``measured``, first scaling the oxides down until they add up (random draws from
    the profiles can pass 102 %, which the catalog refuses)."""
    while True:
        if "Fe2O3" in measured:
            measured["TFe"] = (measured["Fe2O3"] * D("0.6994")).quantize(D("0.01"))
        try:
            return grade(measured, solid_waste=solid_waste)
        except InvalidAssayError:
            for code in ("Al2O3", "SiO2", "CaO", "MgO", "K2O"):
                if code in measured:
                    measured[code] = (measured[code] * D("0.8")).quantize(D("0.01"))


def _templates(rng: random.Random) -> dict[str, list[tuple[dict[str, Decimal], Any]]]:
    """Graded assays per residue profile; each lot takes one (grading every lot would take
    minutes, and 600 distinct assays per profile spread the values well enough)."""
    templates: dict[str, list[tuple[dict[str, Decimal], Any]]] = {}
    for profile in [*PROFILES, "product"]:
        product = profile == "product"
        ranges = (
            [("Fe2O3", 85, 92), ("Na2O", 0.1, 0.5), ("MgO", 0.1, 0.5), ("CaO", 0.5, 2)]
            if product
            else PROFILES[profile]
        )
        material = "iron_concentrate" if product else MATERIAL[profile]
        pool = templates[profile] = []
        for _ in range(TEMPLATES):
            measured: dict[str, Decimal] = {}
            for code, low, high in [*ranges, *COMMON]:
                if product and code in ("Al2O3", "SiO2", "moisture"):
                    low, high = 1, 4
                if rng.random() < 0.95:
                    measured[code] = D(f"{rng.uniform(low, high):.2f}")
            pool.append((measured, _graded(measured, MATERIALS[material].solid_waste)))
    return templates


def _lots(session: Session, rng: random.Random, producers: list[Any], n: int) -> None:
    """``n`` lots (92 % published) with assays and gradings, by COPY with explicit ids."""
    now = dt.datetime.now(dt.UTC)
    today = now.date()
    lot_columns = [
        "id", "producer_id", "site_id", "material_code", "material_family", "province", "city",
        "geo_x", "geo_y", "geo_z", "title_zh", "title_en", "description_zh", "search_text",
        "quantity", "remaining", "basis", "moisture_pct", "min_order", "recurrence",
        "available_from", "sale_mode", "price", "currency", "closes_at", "anti_snipe_minutes",
        "delivery_terms", "status", "published_at", "created_at",
    ]  # fmt: skip
    lots, assays, values, uses = [], [], [], []
    vectors = {}
    templates = _templates(rng)
    for lot_id in range(1, n + 1):
        company_id, site, kind = rng.choice(producers)
        product = kind == "bayer_high_fe" and rng.random() < 0.1
        profile = "product" if product else kind
        material = "iron_concentrate" if product else MATERIAL[kind]
        if site.id not in vectors:
            vectors[site.id] = unit_vector(site.latitude, site.longitude)
        quantity = D(rng.choice([2000, 5000, 20000, 100000]))
        remaining = quantity if rng.random() < 0.7 else (quantity * D(rng.randint(1, 9)) / 10)
        price = rng.uniform(100, 400) if product else rng.uniform(-150, 10)
        mode = rng.choices(["buy_now", "auction", "tender"], [0.7, 0.2, 0.1])[0]
        status = rng.choices(["published", "draft", "withdrawn"], [0.92, 0.05, 0.03])[0]
        published = now - dt.timedelta(minutes=rng.randint(0, 60 * 24 * 180))
        zh, en = TITLES[profile]
        description = f"{site.city}堆场，可长期供应。 lot {lot_id}"
        lots.append(
            (
                lot_id, company_id, site.id, material, MATERIALS[material].family.value,
                site.province, site.city, *vectors[site.id], f"{zh} {lot_id}", en, description,
                f"{zh} {lot_id} {en} {description}".casefold(), quantity, remaining,
                rng.choice(["dry", "wet"]), D(rng.randint(15, 40)), D(rng.choice([100, 500])),
                "one_off", today - dt.timedelta(days=rng.randint(0, 60)), mode,
                D(f"{price:.2f}"), "CNY",
                now + dt.timedelta(days=rng.randint(1, 30)) if mode != "buy_now" else None,
                5, "ex_works", status, published if status != "draft" else None, published,
            )
        )  # fmt: skip
        assays.append((lot_id, lot_id, "基准实验室", today))
        measured, grading = rng.choice(templates[profile])
        for code, value in measured.items():
            values.append((lot_id, lot_id, code, value))
        for use in grading.uses:
            uses.append((lot_id, use.end_use.value, use.fitness.value, use.gate.value != "fit"))
    conn = session.connection()
    # Loading is quicker without the plain indexes; they are rebuilt from their own definitions.
    tables = ("lots", "assays", "assay_values", "lot_end_uses")
    indexes = conn.execute(
        text(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = ANY(:tables) "
            "AND indexname LIKE 'ix_%'"
        ),
        {"tables": list(tables)},
    ).all()
    for name, _definition in indexes:
        conn.execute(text(f'DROP INDEX "{name}"'))
    _copy(conn, "lots", lot_columns, lots)
    _copy(conn, "assays", ["id", "lot_id", "lab_name", "sampled_on"], assays)
    _copy(conn, "assay_values", ["assay_id", "lot_id", "parameter", "value"], values)
    _copy(conn, "lot_end_uses", ["lot_id", "end_use", "fitness", "gated"], uses)
    for _name, definition in indexes:
        conn.execute(text(definition))
    for table in ("lots", "assays"):
        conn.execute(text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), {n})"))
    session.commit()
    # As autovacuum would leave it: statistics, and a visibility map for index-only scans.
    with session.get_bind().connect().execution_options(isolation_level="AUTOCOMMIT") as auto:
        for table in tables:
            auto.execute(text(f"VACUUM ANALYZE {table}"))


# --- 1. search -------------------------------------------------------------------------------

_INDEX = re.compile(
    r"(?:Index Scan|Index Only Scan|Bitmap Index Scan)(?: Backward)? (?:using|on) (\w+)"
)


def _plans(session: Session, actor: Actor, query: CatalogueQuery) -> tuple[list[str], str]:
    """The indexes the statements of one search use, and the plan ``search_lots`` chose."""
    statements: list[tuple[str, Any]] = []
    engine = session.get_bind()

    def capture(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_rest: Any) -> None:
        statements.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", capture)
    try:
        page = search_lots(session, actor, query)
    finally:
        event.remove(engine, "before_cursor_execute", capture)
    used: list[str] = []
    raw = session.connection().connection.dbapi_connection
    for statement, parameters in statements:
        with raw.cursor() as cursor:
            if statement.startswith("SET "):  # settings the search makes for its statements
                cursor.execute(statement, parameters)
                continue
            cursor.execute("EXPLAIN " + statement, parameters)
            plan = "\n".join(row[0] for row in cursor.fetchall())
        for name in _INDEX.findall(plan):
            if name not in used:
                used.append(name)
    return used, page.plan


def bench_search(session: Session, actor: Actor, site_id: int) -> tuple[list[float], list[str]]:
    """Each of ``QUERIES`` ``REPEAT`` times (distances from the buyer's site ``site_id``)."""
    samples: list[float] = []
    lines = []
    for label, query in QUERIES:
        query = dataclasses.replace(query, origin_site_id=site_id)
        search_lots(session, actor, query)  # warm the cache and the statement
        timings = []
        for _ in range(REPEAT):
            start = time.perf_counter()
            page = search_lots(session, actor, query)
            timings.append((time.perf_counter() - start) * 1000)
            session.rollback()
        samples += timings
        indexes, plan = _plans(session, actor, query)
        session.rollback()
        lines.append(
            f"  {label:<32} p50 {median(timings):6.1f} ms  max {max(timings):6.1f} ms  "
            f"{page.total:>5}{'' if page.exact else '+'} lots  plan={plan}  "
            f"indexes: {', '.join(indexes) or 'none'}"
        )
    return samples, lines


# --- 2. the page over HTTP -------------------------------------------------------------------


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _login_cookie(base: str) -> str:
    import requests

    web = requests.Session()
    web.headers["User-Agent"] = USER_AGENT
    page = web.get(base + "/login").text
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page)
    assert token is not None, "no login form"
    response = web.post(
        base + "/login",
        data={"email": "buyer@bench.test", "password": PASSWORD, "csrf_token": token.group(1)},
        allow_redirects=False,
    )
    assert response.status_code == 302, response.status_code
    return "; ".join(f"{k}={v}" for k, v in web.cookies.items())


def _load(url: str, cookie: str, seconds: float) -> dict[str, Any]:
    output = subprocess.run(  # noqa: S603 (our own load generator, fixed arguments)
        [
            sys.executable,
            "-m",
            "benchmarks.loadgen",
            url,
            str(CONNECTIONS),
            str(seconds),
            f"Cookie: {cookie}",
            f"User-Agent: {USER_AGENT}",
            "Accept-Language: zh-CN",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if output.returncode != 0:
        raise RuntimeError(f"load generator failed: {output.stderr[-2000:]}")
    return dict(json.loads(output.stdout))


def _wrk(url: str, cookie: str, seconds: float) -> dict[str, Any] | None:
    """The same load from ``wrk`` (a C client), when it is installed; None otherwise.

    The Python load generator costs about as much per request as the bare route it loads, so
    with it the hello route is held back by the client more than the page is: the ratio looks
    better and the page's latencies worse than a C client shows. Both are reported."""
    wrk = shutil.which("wrk")
    if wrk is None:
        return None
    headers = [f"Cookie: {cookie}", f"User-Agent: {USER_AGENT}", "Accept-Language: zh-CN"]
    args = [wrk, "-t1", f"-c{CONNECTIONS}", f"-d{seconds:.0f}s", "--latency"]
    for header in headers:
        args += ["-H", header]
    output = subprocess.run(  # noqa: S603 (wrk from PATH, fixed arguments)
        [*args, url], capture_output=True, text=True, check=False
    ).stdout
    rps = re.search(r"Requests/sec:\s+([\d.]+)", output)
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)\b", output)
    if rps is None or p99 is None or "Non-2xx" in output:
        raise RuntimeError(f"wrk failed: {output[-2000:]}")
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[p99.group(2)]
    return {"rps": float(rps.group(1)), "p99_ms": float(p99.group(1)) * scale}


def bench_http(url: str) -> tuple[dict[str, Any], dict[str, Any], int, tuple[Any, Any]]:
    """(hello, catalogue, lots on the page) from one gunicorn run."""
    import requests

    port = _free_port()
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "SECRET_KEY": "bench-secret",
        "RATELIMIT_ENABLED": "0",
        "RUN_JOBS_IN_PROCESS": "0",
        "LISTINGS_PER_PAGE": "50",
    }
    server = subprocess.Popen(  # noqa: S603 (our own gunicorn, fixed arguments)
        [
            str(Path(sys.executable).parent / "gunicorn"),
            "-w",
            "2",
            "-k",
            "sync",
            "-b",
            f"127.0.0.1:{port}",
            "--log-level",
            "warning",
            "benchmarks.catalogue_app:app",
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
        cookie = _login_cookie(base)
        page_url = f"{base}/lots?{PAGE_QUERY}"
        check = requests.get(
            page_url, headers={"Cookie": cookie, "User-Agent": USER_AGENT}, timeout=10
        )
        assert check.status_code == 200, check.status_code
        assert "/logout" in check.text, "the buyer is not logged in"
        shown = len(re.findall(r'href="/lots/\d+"', check.text))
        _load(base + "/_bench/hello", cookie, 2)  # warm both workers
        _load(page_url, cookie, 2)
        hello = _load(base + "/_bench/hello", cookie, HTTP_SECONDS)
        page = _load(page_url, cookie, HTTP_SECONDS)
        by_wrk = (
            _wrk(base + "/_bench/hello", cookie, HTTP_SECONDS),
            _wrk(page_url, cookie, HTTP_SECONDS),
        )
        return hello, page, shown, by_wrk
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=20)


# --- run ---------------------------------------------------------------------------------------


def run(url: str) -> list[Result]:
    url, drop = _scratch("postgresql", url)
    results: list[Result] = []
    try:
        engine = make_engine(url)
        upgrade(engine)
        rng = random.Random(SEED)
        started = time.perf_counter()
        with Session(engine) as session:
            producers, buyer, user = _companies(session, rng)
            _lots(session, rng, producers, LOTS)
            built = time.perf_counter() - started
            actor = Actor(user.id, buyer.id, role="trader", ip="127.0.0.1")
            samples, lines = bench_search(session, actor, buyer.sites[0].id)
        engine.dispose()
        p50, p95 = median(samples), percentile(samples, 95)
        load = os.getloadavg()
        print(f"catalogue search, {LOTS:,} lots (built in {built:.0f} s), load {load[0]:.1f}:")
        print("\n".join(lines))
        results.append(
            Result(
                "catalogue search (pg)",
                f"{LOTS // 1000}k lots, spec+sort+page",
                p50,
                percentile(samples, 99),
                None,
                "ms",
                "p95 ≤ 50 ms",
                p95 <= 50,
                f"p50 {p50:.1f} ms, p95 {p95:.1f} ms over {len(samples)} searches; "
                f"load average {load[0]:.1f}; " + "; ".join(line.strip() for line in lines),
            )
        )
        hello, page, shown, (wrk_hello, wrk_page) = bench_http(url)
        load = os.getloadavg()
        ratio = page["rps"] / hello["rps"]
        print(
            f"HTTP, gunicorn 2 sync workers, {CONNECTIONS} connections, load {load[0]:.1f}: "
            f"hello {hello['rps']:,.0f} req/s (p99 {hello['p99_ms']:.1f} ms); catalogue page "
            f"({shown} lots) {page['rps']:,.0f} req/s, p50 {page['p50_ms']:.1f} ms, p99 "
            f"{page['p99_ms']:.1f} ms; ratio {ratio:.0%}; codes {hello['codes']} {page['codes']}"
        )
        ok_codes = set(page["codes"]) == {"200"} and set(hello["codes"]) == {"200"}
        if wrk_hello is None or wrk_page is None:
            wrk_met, wrk_line = True, "wrk not installed: no C-client cross-check"
        else:
            wrk_ratio = wrk_page["rps"] / wrk_hello["rps"]
            wrk_met = wrk_ratio >= 0.25 and wrk_page["p99_ms"] <= 100
            wrk_line = (
                f"with wrk: hello {wrk_hello['rps']:.0f} req/s, page {wrk_page['rps']:.0f} "
                f"req/s, ratio {wrk_ratio:.1%}, page p99 {wrk_page['p99_ms']:.1f} ms"
            )
            print(wrk_line)
        results.append(
            Result(
                "catalogue page via gunicorn (pg)",
                f"{shown} lots, filter, buyer",
                page["p50_ms"],
                page["p99_ms"],
                page["rps"],
                "req/s",
                "≥ 25 % of hello, p99 ≤ 100 ms",
                ratio >= 0.25 and page["p99_ms"] <= 100 and ok_codes and wrk_met,
                f"hello {hello['rps']:.0f} req/s, page {page['rps']:.0f} req/s, ratio "
                f"{ratio:.1%}, page p99 {page['p99_ms']:.1f} ms, {CONNECTIONS} connections, "
                f"load average {load[0]:.1f}; {wrk_line}; results and filter form from the "
                "per-worker fragment cache (one URL repeated, no catalogue change during the "
                "run)",
            )
        )
    finally:
        drop()
    return results
