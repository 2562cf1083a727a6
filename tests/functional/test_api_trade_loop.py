"""The whole trade loop through the JSON API, without a browser.

A refinery and a cement plant register (the only step with no API: a company's first user
signs up on the web and confirms the address), an administrator verifies both; the refinery
lists an auction lot with its assay, the lot is approved; the cement plant posts a demand and
finds the lot among its matches, bids, the auction closes and the award becomes a contract (the
worker's jobs, run here by hand on a clock the test moves), both sign, the refinery delivers
three loads, the cement plant receives them, every invoice is paid by bank transfer as the
administrator reconciles it, the contract completes and the audit trail verifies. Runs on its
own committed database per backend, since the jobs use sessions of their own.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid

import pytest
from sqlalchemy import select

from exchange import create_app
from exchange.accounts.models import Company, User
from exchange.db import session_scope, utcnow
from exchange.jobs import _draw_contracts
from exchange.notifications.models import EmailMessage
from exchange.trading.tasks import close_due
from tests.conftest import BACKENDS, TEST_CONFIG, create_database, drop_database
from tests.support.api import bearer, make_token
from tests.support.builders import csrf_token, make_user, valid_uscc
from tests.support.trading import ManualClock

PASSWORD = "loop-password-123"
API = "/api/v1"
NOW = utcnow().replace(microsecond=0)


@pytest.fixture(params=BACKENDS)
def loop(request, tmp_path):
    name = f"rmx_loop_{uuid.uuid4().hex[:8]}"
    url = create_database(request.param, tmp_path, name)
    clock = ManualClock(NOW)
    app = create_app(
        {
            **TEST_CONFIG,
            "DATABASE_URL": url,
            "UPLOAD_DIR": str(tmp_path / "uploads"),
            "TRADING_CLOCK": clock,
        }
    )
    yield app, clock
    drop_database(request.param, name)


def _register(app, n, *, producer, sector, province, city, lat, lon):
    email = f"loop{n}@example.com"
    client = app.test_client()  # each company's first user signs up in a browser of their own
    response = client.post(
        "/register",
        data={
            "legal_name_zh": f"闭环测试{n}有限公司",
            "legal_name_en": f"Loop Test {n} Co., Ltd.",
            "uscc": valid_uscc(9000 + n),
            **({"is_producer": "y"} if producer else {"is_buyer": "y"}),
            "sector": sector,
            "province": province,
            "city": city,
            "site_name": "一号厂区",
            "latitude": lat,
            "longitude": lon,
            "contact_name": "Loop",
            "contact_phone": "1",
            "email": email,
            "password": PASSWORD,
            "password2": PASSWORD,
            "csrf_token": csrf_token(client, "/register"),
        },
    )
    assert response.status_code == 200 and email in response.get_data(as_text=True)
    # The owner confirms the address from the e-mail, as the page asks.
    with app.app_context(), session_scope(app) as s:
        body = s.scalar(
            select(EmailMessage.body)
            .where(EmailMessage.recipient == email)
            .order_by(EmailMessage.id.desc())
        )
    link = re.search(r"/confirm/[^\s\"<]+", body or "")
    assert link, body
    assert client.get(link.group(0)).status_code in (200, 302)
    return email


def _ok(response, status=200):
    assert response.status_code == status, (response.status_code, response.get_json())
    return response.get_json()


def test_register_list_match_bid_close_sign_deliver_pay_and_verify(loop):
    app, clock = loop
    client = app.test_client()

    # Two companies register on the web; an administrator verifies both.
    seller_email = _register(
        app,
        1,
        producer=True,
        sector="alumina",
        province="37",
        city="滨州市",
        lat="37.38",
        lon="117.97",
    )
    buyer_email = _register(
        app,
        2,
        producer=False,
        sector="cement",
        province="37",
        city="淄博市",
        lat="36.81",
        lon="118.05",
    )
    with app.app_context(), session_scope(app) as s:
        admin = make_user(s, "loop-admin@example.test", admin=True)
        seller_user = s.scalar(select(User).where(User.email == seller_email))
        buyer_user = s.scalar(select(User).where(User.email == buyer_email))
        seller_co = s.scalar(select(Company).where(Company.contact_email == seller_email))
        buyer_co = s.scalar(select(Company).where(Company.contact_email == buyer_email))
        tokens = {
            "seller": bearer(make_token(s, seller_user)),
            "buyer": bearer(make_token(s, buyer_user)),
            "admin": bearer(make_token(s, admin)),
        }
        ids = {"seller": seller_co.id, "buyer": buyer_co.id}
        sites = {"seller": seller_co.sites[0].id, "buyer": buyer_co.sites[0].id}
    for company_id in ids.values():
        _ok(
            client.post(
                f"{API}/companies/{company_id}/verification",
                json={"decision": "verified", "reason": "营业执照核验无误"},
                headers=tokens["admin"],
            )
        )
    seller, buyer, admin_h = tokens["seller"], tokens["buyer"], tokens["admin"]
    assert _ok(client.get(f"{API}/companies/me", headers=buyer))["verification_status"] == (
        "verified"
    )

    # The refinery lists an auction lot with its assay and submits it; it is approved.
    closes = NOW + dt.timedelta(hours=2)
    lot = _ok(
        client.post(
            f"{API}/lots",
            json={
                "material_code": "rm_bayer_filter_cake",
                "site_id": sites["seller"],
                "title_zh": "高铁拜耳法赤泥滤饼",
                "quantity": "100.000",
                "basis": "dry",
                "min_order": "100",
                "recurrence": "one_off",
                "available_from": NOW.date().isoformat(),
                "sale_mode": "auction",
                "price": "-30.00",
                "min_increment": "1.00",
                "opens_at": NOW.isoformat(),
                "closes_at": closes.isoformat(),
                "delivery_terms": "ex_works",
            },
            headers={**seller, "Idempotency-Key": "loop-lot"},
        ),
        201,
    )
    _ok(
        client.put(
            f"{API}/lots/{lot['id']}/assay",
            json={
                "lab_name": "山东省冶金检测中心",
                "sampled_on": NOW.date().isoformat(),
                "values": {
                    "Fe2O3": "45.0",
                    "TFe": "31.5",
                    "Al2O3": "16.0",
                    "SiO2": "8.0",
                    "CaO": "3.0",
                    "Na2O": "1.2",
                    "K2O": "0.2",
                    "MgO": "1.0",
                    "Cl": "0.01",
                    "moisture": "28.0",
                    "leach_pH": "11.0",
                    "Ra226": "60",
                    "Th232": "90",
                    "K40": "150",
                },
            },
            headers=seller,
        )
    )
    submitted = _ok(client.post(f"{API}/lots/{lot['id']}/submit", headers=seller))
    if submitted["status"] == "pending_review":
        _ok(client.post(f"{API}/lots/{lot['id']}/approve", headers=admin_h))
    assert _ok(client.get(f"{API}/lots/{lot['id']}"))["status"] == "published"

    # The cement plant posts a demand and finds the lot among its matches.
    demand = _ok(
        client.post(
            f"{API}/demands",
            json={
                "title": "水泥铁质校正料",
                "end_use": "cement_iron_corrective",
                "families": ["red_mud"],
                "specs": [{"parameter": "Fe2O3", "minimum": "40"}],
                "quantity": "100",
                "recurrence": "one_off",
                "min_lot_size": "50",
                "delivery_site_id": sites["buyer"],
                "window_start": NOW.date().isoformat(),
                "window_end": (NOW.date() + dt.timedelta(days=120)).isoformat(),
                "max_price": "80",
                "modes": ["road"],
                "visibility": "public",
            },
            headers={**buyer, "Idempotency-Key": "loop-demand"},
        ),
        201,
    )
    matches = _ok(client.get(f"{API}/demands/{demand['id']}/matches", headers=buyer))
    assert [m["lot"]["id"] for m in matches] == [lot["id"]], matches

    # It bids; the auction closes; the award becomes a contract.
    state = _ok(client.get(f"{API}/lots/{lot['id']}/trading"))
    _ok(
        client.post(
            f"{API}/lots/{lot['id']}/bids",
            json={
                "price": state["minimum_next"],
                "quantity": "100",
                "end_use": "cement_iron_corrective",
                "seen_version": state["version"],
            },
            headers={**buyer, "Idempotency-Key": "loop-bid"},
        ),
        201,
    )
    clock.advance(dt.timedelta(hours=3))
    with app.app_context():
        close_due(app)
        assert _draw_contracts(app)
    [contract] = _ok(client.get(f"{API}/contracts", headers=seller))
    url = f"{API}/contracts/{contract['id']}"

    # Both sign the terms they read; the refinery delivers, the cement plant receives.
    terms_hash = _ok(client.get(url, headers=buyer))["terms_hash"]
    for headers in (seller, buyer):
        _ok(
            client.post(
                f"{url}/sign",
                json={"password": PASSWORD, "terms_hash": terms_hash},
                headers=headers,
            )
        )
    # 46.3 t wet a load at the assay's 28 % moisture is 33.336 dry tonnes: three make the 100.
    for n in (1, 2, 3):
        load = _ok(
            client.post(
                f"{url}/deliveries",
                json={
                    "dispatched_on": NOW.date().isoformat(),
                    "carrier": "滨州顺达物流",
                    "vehicle_plate": f"鲁M1234{n}",
                    "manifest_no": f"LOOP-{n}",
                    "gross_t": "61.500",
                    "tare_t": "15.200",
                },
                headers={**seller, "Idempotency-Key": f"loop-load-{n}"},
            ),
            201,
        )
        _ok(
            client.post(
                f"{url}/deliveries/{load['id']}/receipt",
                json={
                    "received_on": NOW.date().isoformat(),
                    "received_gross_t": "61.500",
                    "received_tare_t": "15.200",
                    "end_use": "cement_iron_corrective",
                    "assay": {"Fe2O3": "45.0"},
                },
                headers=buyer,
            )
        )

    # Every invoice is paid by bank transfer; the last payment completes the contract.
    for _round in range(3):
        invoices = _ok(client.get(f"{API}/invoices?contract_id={contract['id']}", headers=seller))
        owed = [i for i in invoices if i["open_fen"] > 0 and i["kind"] != "refund"]
        if not owed:
            break
        for invoice in owed:
            paid = _ok(
                client.post(
                    f"{API}/bank-transfers",
                    json={
                        "received_on": NOW.date().isoformat(),
                        "amount_fen": invoice["open_fen"],
                        "reference_text": invoice["reference"],
                        "payer_name": "闭环测试",
                    },
                    headers=admin_h,
                ),
                201,
            )
            assert paid["outcome"] == "matched", paid
    final = _ok(client.get(url, headers=buyer))
    assert final["status"] == "completed", final
    report = _ok(client.post(f"{API}/audit/verify", headers=admin_h))
    assert report["ok"] and report["breaks"] == [], report
