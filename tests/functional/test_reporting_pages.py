"""Reporting pages through the Flask client: who reaches what, forms, exports, no leaks."""

from __future__ import annotations

import datetime as dt
import io
from decimal import Decimal

import pytest
from sqlalchemy import select

from exchange.db import utcnow
from exchange.listings.models import MonthlyGeneration
from exchange.reporting import statistics
from exchange.reporting.models import AnomalyFlag, CompanyAffiliation, FlagStatus
from tests.support.builders import csrf_token, login, make_company, make_user

ANON, OTHER, OWN, ADMIN = "anonymous", "other", "own", "admin"
D = Decimal
LAST_MONTH = (utcnow().date().replace(day=1) - dt.timedelta(days=1)).replace(day=1)


@pytest.fixture()
def world(db):
    own, own_owner = make_company(db, producer=True, buyer=False)
    own.legal_name_zh = "保密氧化铝有限公司"
    own.legal_name_en = "Secret Alumina Co."
    other, other_owner = make_company(db)
    other.sites[0].latitude = D("30.5")  # not related to ``own`` by site
    admin = make_user(db, admin=True)
    db.add(
        MonthlyGeneration(
            company_id=own.id, site_id=own.sites[0].id, month=LAST_MONTH, tonnes=D("123456.789")
        )
    )
    db.add(
        MonthlyGeneration(
            company_id=other.id, site_id=other.sites[0].id, month=LAST_MONTH, tonnes=D("5555")
        )
    )
    flag = AnomalyFlag(
        rule="login_burst",
        fingerprint=f"func:{own.id}",
        subject_type="login",
        subject_ids=["x@y.cn"],
        company_ids=[own.id],
        evidence="5 failures",
        data={"email": "x@y.cn", "failures": 5, "day": "2026-11-01"},
        raised_at=utcnow(),
    )
    db.add(flag)
    db.flush()
    statistics.refresh(db, full=True)
    db.flush()
    return {
        "own": own,
        "other": other,
        "flag": flag,
        "users": {OWN: own_owner, OTHER: other_owner, ADMIN: admin},
    }


def _as(client, world, who):
    if who != ANON:
        login(client, world["users"][who].email)


GET_ROUTES = [
    ("/stats", {ANON: 200, OTHER: 200, OWN: 200, ADMIN: 200}),
    ("/reports/ledger", {ANON: 302, OTHER: 200, OWN: 200, ADMIN: 403}),
    ("/reports/ledger.csv", {ANON: 302, OTHER: 200, OWN: 200, ADMIN: 403}),
    ("/reports/ledger.xlsx", {ANON: 302, OTHER: 200, OWN: 200, ADMIN: 403}),
    ("/reports/ledger.pdf", {ANON: 302, OTHER: 404, OWN: 404, ADMIN: 404}),
    ("/admin/stats", {ANON: 302, OTHER: 403, OWN: 403, ADMIN: 200}),
    ("/admin/stats/export.csv", {ANON: 302, OTHER: 403, OWN: 403, ADMIN: 200}),
    ("/admin/stats/export.xlsx", {ANON: 302, OTHER: 403, OWN: 403, ADMIN: 200}),
    ("/admin/flags", {ANON: 302, OTHER: 403, OWN: 403, ADMIN: 200}),
    ("/admin/flags/{flag}", {ANON: 302, OTHER: 403, OWN: 403, ADMIN: 200}),
    ("/admin/oversight/companies/{own}", {ANON: 302, OTHER: 403, OWN: 403, ADMIN: 200}),
    ("/admin/companies/{own}/ledger.csv", {ANON: 302, OTHER: 403, OWN: 403, ADMIN: 200}),
    ("/admin/affiliations", {ANON: 302, OTHER: 403, OWN: 403, ADMIN: 200}),
]


@pytest.mark.parametrize("who", [ANON, OTHER, OWN, ADMIN])
@pytest.mark.parametrize(("path", "expected"), GET_ROUTES, ids=[r[0] for r in GET_ROUTES])
def test_get_routes(client, world, who, path, expected):
    _as(client, world, who)
    response = client.get(path.format(own=world["own"].id, flag=world["flag"].id))
    assert response.status_code == expected[who]


POSTS = [
    ("/admin/stats/refresh", {}),
    ("/admin/flags/detect", {}),
    ("/admin/flags/{flag}", {"decision": "dismissed", "reason": "checked"}),
    ("/admin/oversight/companies/{own}", {"reason": "fraud"}),
]


@pytest.mark.parametrize("who", [ANON, OTHER, OWN])
@pytest.mark.parametrize(("path", "data"), POSTS, ids=[p[0] for p in POSTS])
def test_only_admins_post_oversight_actions(client, db, world, who, path, data):
    _as(client, world, who)
    response = client.post(
        path.format(own=world["own"].id, flag=world["flag"].id),
        data={"csrf_token": csrf_token(client, "/"), **data},
    )
    assert response.status_code in (302, 403)
    if who == ANON:
        assert "/login" in response.headers["Location"]
    else:
        assert response.status_code == 403
    assert world["own"].suspended_at is None
    assert world["flag"].status is FlagStatus.OPEN


def test_oversight_posts_need_the_csrf_token(client, world):
    login(client, world["users"][ADMIN].email)
    response = client.post(f"/admin/oversight/companies/{world['own'].id}", data={"reason": "x"})
    assert response.status_code == 400
    assert world["own"].suspended_at is None


def test_public_stats_show_national_totals_but_no_company(client, world):
    page = client.get("/stats").get_data(as_text=True)
    assert "保密氧化铝有限公司" not in page and "Secret Alumina" not in page
    assert "129,012 t" in page  # 123,456.789 + 5,555 dry t
    assert "<svg" in page and 'stroke-dasharray="6 4"' in page  # the target lines
    assert "style=" not in page


def test_public_stats_bad_period_is_a_field_error(client, world):
    response = client.get("/stats?start=2026-05&end=2026-01")
    assert response.status_code == 422
    assert "invalid-feedback" in response.get_data(as_text=True)
    assert client.get("/stats?start=not-a-month").status_code == 422


def test_admin_dashboard_names_producers(client, world):
    client.environ_base["HTTP_ACCEPT_LANGUAGE"] = "zh-CN"  # the Chinese legal names
    login(client, world["users"][ADMIN].email)
    page = client.get(f"/admin/stats?start={LAST_MONTH:%Y-%m}&end={LAST_MONTH:%Y-%m}")
    text = page.get_data(as_text=True)
    assert "保密氧化铝有限公司" in text and "<svg" in text


def test_a_company_exports_only_its_own_ledger(client, world):
    login(client, world["users"][OWN].email)
    start = f"{LAST_MONTH:%Y-%m}"
    csv_text = client.get(f"/reports/ledger.csv?start={start}&end={start}").get_data(as_text=True)
    assert "123456.789" in csv_text and "5555" not in csv_text
    # There is no way to name another company: the parameter is refused or ignored.
    other = client.get(
        f"/reports/ledger.csv?start={start}&end={start}&company={world['other'].id}"
    ).get_data(as_text=True)
    assert "5555" not in other


def test_admin_exports_statistics_with_company_names_as_xlsx(client, world):
    from openpyxl import load_workbook

    login(client, world["users"][ADMIN].email)
    response = client.get(f"/admin/stats/export.xlsx?start={LAST_MONTH:%Y-%m}")
    assert response.status_code == 200
    assert response.headers["Content-Disposition"].startswith("attachment;")
    rows = list(load_workbook(io.BytesIO(response.data)).active.iter_rows(values_only=True))
    assert any(r[3] == "保密氧化铝有限公司" and r[7] == pytest.approx(123456.789) for r in rows[1:])


def test_admin_dismisses_a_flag_with_a_reason(client, db, world):
    login(client, world["users"][ADMIN].email)
    path = f"/admin/flags/{world['flag'].id}"
    empty = client.post(
        path, data={"csrf_token": csrf_token(client, path), "decision": "dismissed", "reason": ""}
    )
    assert empty.status_code == 422 and "invalid-feedback" in empty.get_data(as_text=True)
    assert world["flag"].status is FlagStatus.OPEN
    done = client.post(
        path,
        data={
            "csrf_token": csrf_token(client, path),
            "decision": "dismissed",
            "reason": "known user",
        },
    )
    assert done.status_code == 302
    db.refresh(world["flag"])
    assert world["flag"].status is FlagStatus.DISMISSED and world["flag"].reason == "known user"


def test_admin_suspends_a_company_and_its_users_see_why(client, db, world):
    login(client, world["users"][ADMIN].email)
    path = f"/admin/oversight/companies/{world['own'].id}"
    blank = client.post(path, data={"csrf_token": csrf_token(client, path), "reason": " "})
    assert blank.status_code == 422
    done = client.post(path, data={"csrf_token": csrf_token(client, path), "reason": "fake assay"})
    assert done.status_code == 302
    db.refresh(world["own"])
    assert world["own"].suspension_reason == "fake assay"
    client.post("/logout", data={"csrf_token": csrf_token(client, "/")})
    login(client, world["users"][OWN].email)
    assert "fake assay" in client.get("/").get_data(as_text=True)


def test_admin_declares_an_affiliation_and_bad_codes_are_field_errors(client, db, world):
    login(client, world["users"][ADMIN].email)
    path = "/admin/affiliations"
    bad = client.post(
        path,
        data={
            "csrf_token": csrf_token(client, path),
            "company_a": world["own"].uscc,
            "company_b": "nope",
            "kind": "common_owner",
            "note": "",
        },
    )
    assert bad.status_code == 422 and "invalid-feedback" in bad.get_data(as_text=True)
    assert db.scalar(select(CompanyAffiliation)) is None
    ok = client.post(
        path,
        data={
            "csrf_token": csrf_token(client, path),
            "company_a": world["own"].uscc,
            "company_b": world["other"].uscc,
            "kind": "common_owner",
            "note": "registry",
        },
    )
    assert ok.status_code == 302
    assert db.scalar(select(CompanyAffiliation)).note == "registry"
