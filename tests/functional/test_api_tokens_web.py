"""The API tokens page: create (secret shown once), list, revoke; CSRF; bad input."""

import re

import pytest
from sqlalchemy import func, select

from exchange.accounts.models import ApiToken
from exchange.accounts.services import token_hash
from tests.support.api import bearer, make_token
from tests.support.builders import csrf_token, login, make_company, make_user

SECRET = re.compile(r'value="(rmx_[A-Za-z0-9_-]+)"')


def _count(db, user):
    return db.scalar(select(func.count()).select_from(ApiToken).where(ApiToken.user_id == user.id))


@pytest.mark.parametrize("who", ["owner", "viewer", "admin"])
def test_a_signed_in_user_creates_a_token_shown_once_and_stored_hashed(client, db, who):
    if who == "admin":
        user = make_user(db, admin=True)
    else:
        _company, user = make_company(db, role="viewer" if who == "viewer" else "owner")
    login(client, user.email)
    page = client.get("/account/tokens/")
    assert page.status_code == 200
    response = client.post(
        "/account/tokens/",
        data={"name": "ERP", "scope": "read", "csrf_token": csrf_token(client, "/account/tokens/")},
    )
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    secret = SECRET.search(response.get_data(as_text=True)).group(1)
    token = db.scalar(select(ApiToken).where(ApiToken.user_id == user.id))
    assert token.token_hash == token_hash(secret) and secret not in token.token_hash
    assert token.prefix == secret[:10] and token.scope.value == "read"
    listing = client.get("/account/tokens/").get_data(as_text=True)
    assert secret not in listing and token.prefix in listing and "ERP" in listing
    assert client.get("/api/v1/me", headers=bearer(secret)).status_code == 200


def test_anonymous_visitors_are_sent_to_login(client):
    assert client.get("/account/tokens/").status_code == 302
    assert client.post("/account/tokens/", data={"name": "x"}).status_code in {302, 400}


def test_creating_without_csrf_is_refused_and_stores_nothing(client, db):
    _company, user = make_company(db)
    login(client, user.email)
    response = client.post("/account/tokens/", data={"name": "ERP", "scope": "read"})
    assert response.status_code == 400
    assert _count(db, user) == 0


@pytest.mark.parametrize(
    ("data", "field"),
    [({"name": "", "scope": "read"}, "name"), ({"name": "x", "scope": "all"}, "scope")],
)
def test_bad_input_shows_field_errors_and_stores_nothing(client, db, data, field):
    _company, user = make_company(db)
    login(client, user.email)
    data = {**data, "csrf_token": csrf_token(client, "/account/tokens/")}
    response = client.post("/account/tokens/", data=data)
    assert response.status_code == 422
    assert "is-invalid" in response.get_data(as_text=True)
    assert _count(db, user) == 0


def test_owner_revokes_a_token_and_it_stops_working(client, db):
    _company, user = make_company(db)
    secret = make_token(db, user)
    token_id = db.scalar(select(ApiToken.id).where(ApiToken.user_id == user.id))
    login(client, user.email)
    response = client.post(
        f"/account/tokens/{token_id}/revoke",
        data={"csrf_token": csrf_token(client, "/account/tokens/")},
    )
    assert response.status_code == 302
    assert client.get("/api/v1/me", headers=bearer(secret)).status_code == 401
    page = client.get("/account/tokens/", headers={"Accept-Language": "en"})
    assert "Revoked" in page.get_data(as_text=True)


def test_nobody_revokes_another_users_token(client, db):
    _company, victim = make_company(db)
    secret = make_token(db, victim)
    token_id = db.scalar(select(ApiToken.id).where(ApiToken.user_id == victim.id))
    _other, attacker = make_company(db)
    login(client, attacker.email)
    client.post(
        f"/account/tokens/{token_id}/revoke",
        data={"csrf_token": csrf_token(client, "/account/tokens/")},
    )
    assert client.get("/api/v1/me", headers=bearer(secret)).status_code == 200


def test_revoking_without_csrf_is_refused(client, db):
    _company, user = make_company(db)
    secret = make_token(db, user)
    token_id = db.scalar(select(ApiToken.id).where(ApiToken.user_id == user.id))
    login(client, user.email)
    assert client.post(f"/account/tokens/{token_id}/revoke").status_code == 400
    assert client.get("/api/v1/me", headers=bearer(secret)).status_code == 200
