"""The reporting API: public national statistics, administrators' flags."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from sqlalchemy import select

from exchange.audit.models import AuditEvent
from exchange.db import utcnow
from exchange.listings.models import MonthlyGeneration
from exchange.reporting import statistics
from exchange.reporting.models import AnomalyFlag, FlagStatus
from tests.support.api import assert_error_shape, bearer, make_token
from tests.support.builders import make_company, make_user

D = Decimal
LAST_MONTH = (utcnow().date().replace(day=1) - dt.timedelta(days=1)).replace(day=1)


@pytest.fixture()
def data(db):
    company, owner = make_company(db, producer=True, buyer=False)
    db.add(
        MonthlyGeneration(
            company_id=company.id, site_id=company.sites[0].id, month=LAST_MONTH, tonnes=D("1000.5")
        )
    )
    flag = AnomalyFlag(
        rule="price_outlier",
        fingerprint="api:1",
        subject_type="trade",
        subject_ids=["1"],
        company_ids=[company.id],
        evidence="far",
        data={"trade_id": 1},
        raised_at=utcnow(),
    )
    db.add(flag)
    db.flush()
    statistics.refresh(db, full=True)
    admin = make_user(db, admin=True)
    return {"company": company, "owner": owner, "admin": admin, "flag": flag}


def test_utilization_is_public_national_and_uses_decimal_strings(client, data):
    response = client.get(
        f"/api/v1/stats/utilization?start={LAST_MONTH:%Y-%m}&end={LAST_MONTH:%Y-%m}"
    )
    assert response.status_code == 200
    body = response.get_json()
    assert body["rows"][0]["month"] == f"{LAST_MONTH:%Y-%m}"
    assert body["rows"][0]["generated_t"] == "1000.500"
    assert body["rows"][0]["rate"] == "0.0000"
    assert [t["year"] for t in body["targets"]] == [2027, 2030]
    assert body["targets"][0]["rate"] == "0.1500" and body["targets"][0]["met"] is False
    assert data["company"].legal_name_zh not in response.get_data(as_text=True)


def test_utilization_by_end_use_and_total(client, data):
    assert client.get("/api/v1/stats/utilization?by=end_use").get_json()["rows"] == []
    total = client.get("/api/v1/stats/utilization?by=total").get_json()["rows"]
    assert len(total) == 1 and total[0]["month"] is None


@pytest.mark.parametrize(
    "query", ["start=2026-13", "start=26-01", "by=producer", "start=2026-05&end=2026-01", "x=1"]
)
def test_bad_statistics_queries_are_422(client, data, query):
    assert_error_shape(client.get(f"/api/v1/stats/utilization?{query}"), 422)


def test_price_index_is_public(client, data):
    response = client.get("/api/v1/stats/price-index?family=red_mud")
    assert response.status_code == 200 and response.get_json() == []


def test_flags_need_an_administrator_token(client, db, data):
    assert_error_shape(client.get("/api/v1/flags/"), 401)
    owner_token = make_token(db, data["owner"])
    assert_error_shape(client.get("/api/v1/flags/", headers=bearer(owner_token)), 403)
    admin_token = make_token(db, data["admin"], scope="read")
    response = client.get("/api/v1/flags/?status=open", headers=bearer(admin_token))
    assert response.status_code == 200
    assert data["flag"].id in [f["id"] for f in response.get_json()]


def test_admin_escalates_a_flag_through_the_api(client, db, data):
    flag_id = data["flag"].id
    read = make_token(db, data["admin"], scope="read")
    refused = client.post(
        f"/api/v1/flags/{flag_id}/decision",
        headers=bearer(read),
        json={"decision": "escalated", "reason": "x"},
    )
    assert_error_shape(refused, 403)
    token = make_token(db, data["admin"])
    missing = client.post(
        f"/api/v1/flags/{flag_id}/decision",
        headers=bearer(token),
        json={"decision": "escalated", "reason": ""},
    )
    assert_error_shape(missing, 422)
    ok = client.post(
        f"/api/v1/flags/{flag_id}/decision",
        headers=bearer(token),
        json={"decision": "escalated", "reason": "price 10x the index"},
    )
    assert ok.status_code == 200 and ok.get_json()["status"] == "escalated"
    db.refresh(data["flag"])
    assert data["flag"].status is FlagStatus.ESCALATED
    assert (
        db.scalar(select(AuditEvent.action).where(AuditEvent.chain_key == f"flag:{flag_id}"))
        == "reporting:flag:escalated"
    )
    again = client.post(
        f"/api/v1/flags/{flag_id}/decision",
        headers=bearer(token),
        json={"decision": "escalated", "reason": "again"},
    )
    assert_error_shape(again, 409)
    assert_error_shape(
        client.post(
            "/api/v1/flags/999999/decision",
            headers=bearer(token),
            json={"decision": "dismissed", "reason": "x"},
        ),
        404,
    )
