"""Monthly generation, the company's red mud ledger and company oversight through the API: a
producer reports a month and reads it back in its ledger; bad figures are field errors with
nothing stored; an administrator suspends a company and reinstates it."""

from __future__ import annotations

from sqlalchemy import func, select

from exchange.listings.models import MonthlyGeneration
from tests.support.api import assert_error_shape, bearer, make_token
from tests.support.builders import make_company, make_user

API = "/api/v1"


def test_a_producer_reports_generation_and_reads_it_in_its_ledger(client, db):
    producer, owner = make_company(db)
    token = bearer(make_token(db, owner))
    site = producer.sites[0].id
    body = {"site_id": site, "month": "2026-03-17", "tonnes": "1250.500"}
    first = client.post(f"{API}/generation", json=body, headers=token)
    assert first.status_code == 200, first.get_json()
    assert first.get_json()["month"] == "2026-03-01" and first.get_json()["tonnes"] == "1250.500"
    corrected = client.post(f"{API}/generation", json={**body, "tonnes": "1300"}, headers=token)
    assert corrected.get_json()["id"] == first.get_json()["id"]  # the month is corrected
    reports = client.get(f"{API}/generation", headers=token).get_json()
    assert [(r["month"], r["tonnes"]) for r in reports] == [("2026-03-01", "1300.000")]
    ledger = client.get(f"{API}/ledger?start=2026-03&end=2026-03", headers=token).get_json()
    assert [(e["direction"], e["quantity_t"], e["basis"]) for e in ledger] == [
        ("generated", "1300.000", "dry")
    ]


def test_bad_generation_figures_are_field_errors_and_store_nothing(client, db):
    producer, owner = make_company(db)
    token = bearer(make_token(db, owner))
    site = producer.sites[0].id
    for body, field in [
        ({"site_id": site, "month": "2026-03-01", "tonnes": "-5"}, "tonnes"),
        ({"site_id": site, "month": "2026-03-01", "tonnes": 5}, "tonnes"),
        ({"site_id": site, "month": "2999-01-01", "tonnes": "5"}, "month"),
        ({"site_id": site + 999, "month": "2026-03-01", "tonnes": "5"}, "site_id"),
    ]:
        response = client.post(f"{API}/generation", json=body, headers=token)
        assert field in assert_error_shape(response, 422)["errors"], (body, response.get_json())
    assert db.scalar(select(func.count()).select_from(MonthlyGeneration)) == 0


def test_an_administrator_suspends_and_reinstates_a_company(client, db):
    company, owner = make_company(db)
    admin = bearer(make_token(db, make_user(db, admin=True)))
    url = f"{API}/companies/{company.id}"
    assert_error_shape(client.post(f"{url}/suspension", json={"reason": ""}, headers=admin), 422)
    suspended = client.post(f"{url}/suspension", json={"reason": "伪造化验报告"}, headers=admin)
    assert suspended.status_code == 200 and suspended.get_json()["suspended"] is True
    assert_error_shape(
        client.post(f"{url}/suspension", json={"reason": "again"}, headers=admin), 409
    )
    db.expire_all()
    assert company.is_suspended and company.suspension_reason == "伪造化验报告"
    back = client.post(f"{url}/reinstatement", json={"reason": "核查无误"}, headers=admin)
    assert back.status_code == 200 and back.get_json()["suspended"] is False
    assert_error_shape(
        client.post(f"{API}/companies/999999/suspension", json={"reason": "x"}, headers=admin), 404
    )
