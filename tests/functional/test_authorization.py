"""Every route × anonymous / other company / own company / administrator."""

import pytest
from sqlalchemy import select

from exchange.accounts.models import Membership, Site
from tests.support.builders import csrf_token, login, make_company, make_user

ANON, OTHER, OWN, ADMIN = "anonymous", "other", "own", "admin"


@pytest.fixture()
def world(db):
    own, own_owner = make_company(db)
    _own_trader_company = None
    extra_site = Site(
        company_id=own.id, name="Yard 2", province="37", city="x", latitude=37, longitude=118
    )
    db.add(extra_site)
    colleague = make_user(db)
    db.add(Membership(user_id=colleague.id, company_id=own.id, role="viewer"))
    other, other_owner = make_company(db)
    admin = make_user(db, admin=True)
    db.flush()
    member = db.scalar(select(Membership).where(Membership.user_id == colleague.id))
    return {
        "own": own,
        "site": extra_site,
        "member": member,
        "users": {OWN: own_owner, OTHER: other_owner, ADMIN: admin},
    }


def _as(client, world, who):
    if who != ANON:
        login(client, world["users"][who].email)


# (method, path template, {persona: expected status})
GET_ROUTES = [
    ("/", {ANON: 200, OTHER: 200, OWN: 200, ADMIN: 200}),
    ("/healthz", {ANON: 200, OTHER: 200, OWN: 200, ADMIN: 200}),
    ("/login", {ANON: 200, OTHER: 302, OWN: 302, ADMIN: 302}),
    ("/register", {ANON: 200, OTHER: 200, OWN: 200, ADMIN: 200}),
    ("/password/forgot", {ANON: 200, OTHER: 200, OWN: 200, ADMIN: 200}),
    ("/outbox", {ANON: 200, OTHER: 200, OWN: 200, ADMIN: 200}),
    ("/account/password", {ANON: 302, OTHER: 200, OWN: 200, ADMIN: 200}),
    ("/company", {ANON: 302, OTHER: 200, OWN: 200, ADMIN: 404}),
    ("/companies/{own}", {ANON: 200, OTHER: 200, OWN: 200, ADMIN: 200}),
    ("/admin/companies", {ANON: 302, OTHER: 403, OWN: 403, ADMIN: 200}),
    ("/admin/companies/{own}", {ANON: 302, OTHER: 403, OWN: 403, ADMIN: 200}),
    ("/admin/audit/", {ANON: 302, OTHER: 403, OWN: 403, ADMIN: 200}),
    ("/admin/audit/verify", {ANON: 302, OTHER: 403, OWN: 403, ADMIN: 200}),
    ("/invitations/not-a-token", {ANON: 404, OTHER: 404, OWN: 404, ADMIN: 404}),
    ("/password/reset/not-a-token", {ANON: 200, OTHER: 200, OWN: 200, ADMIN: 200}),
    ("/confirm/not-a-token", {ANON: 422, OTHER: 422, OWN: 422, ADMIN: 422}),
]


@pytest.mark.parametrize("who", [ANON, OTHER, OWN, ADMIN])
@pytest.mark.parametrize(("path", "expected"), GET_ROUTES, ids=[r[0] for r in GET_ROUTES])
def test_get_routes(client, world, who, path, expected):
    _as(client, world, who)
    response = client.get(path.format(own=world["own"].id))
    assert response.status_code == expected[who]


def _post(client, path, data=None):
    return client.post(path, data={"csrf_token": csrf_token(client, "/"), **(data or {})})


# Writes on the OWN company: only its owner succeeds (302 back with a success flash).
@pytest.mark.parametrize("who", [ANON, OTHER, ADMIN, OWN])
@pytest.mark.parametrize("action", ["remove_site", "change_role", "remove_member", "invite"])
def test_company_writes_only_by_its_owner(client, db, world, who, action):
    _as(client, world, who)
    site_id, member_id = world["site"].id, world["member"].id
    path, data = {
        "remove_site": (f"/company/sites/{site_id}/delete", {}),
        "change_role": (f"/company/members/{member_id}/role", {"role": "trader"}),
        "remove_member": (f"/company/members/{member_id}/remove", {}),
        "invite": ("/company/invitations", {"email": "new@example.com", "role": "viewer"}),
    }[action]
    response = _post(client, path, data)
    if who == ANON:
        assert response.status_code == 302 and "/login" in response.location
        return
    assert response.status_code == 302
    page = client.get("/company").get_data(as_text=True) if who != ADMIN else ""
    db.expire_all()
    changed = {
        "remove_site": db.get(Site, site_id) is None,
        "change_role": db.get(Membership, member_id) is not None
        and db.get(Membership, member_id).role.value == "trader",
        "remove_member": db.get(Membership, member_id) is None,
        "invite": "new@example.com" in page and who == OWN,
    }[action]
    assert changed == (who == OWN)


def test_post_without_csrf_token_is_refused(client, world):
    login(client, world["users"][OWN].email)
    response = client.post(f"/company/sites/{world['site'].id}/delete")
    assert response.status_code == 400
    assert "Form expired" in response.get_data(as_text=True) or "表单" in response.get_data(
        as_text=True
    )


def test_admin_decision_requires_admin(client, db, world):
    for who in (OWN, OTHER):
        client.get("/")
        login(client, world["users"][who].email)
        response = _post(
            client, f"/admin/companies/{world['own'].id}", {"decision": "rejected", "reason": "no"}
        )
        assert response.status_code == 403
        _post(client, "/logout")
