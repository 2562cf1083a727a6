"""The /api/v1 platform: tokens, error shapes, pagination, idempotency, rate limits, docs."""

import json

import pytest
from sqlalchemy import func, select

from exchange import create_app
from exchange.accounts.models import ApiToken, Site
from exchange.audit.models import AuditEvent
from exchange.extensions import limiter
from tests.conftest import TEST_CONFIG
from tests.support.api import assert_error_shape, bearer, make_token
from tests.support.builders import csrf_token, login, make_company

SITE = {
    "name": "Yard 3",
    "province": "37",
    "city": "淄博市",
    "latitude": "36.800000",
    "longitude": "118.050000",
}


@pytest.fixture()
def owner(db):
    company, user = make_company(db)
    return company, user, make_token(db, user)


def _sites(db, company_id):
    return db.scalar(select(func.count()).select_from(Site).where(Site.company_id == company_id))


# --- authentication ---------------------------------------------------------------------------


def test_private_endpoint_without_token_is_401_with_a_bearer_challenge(client):
    response = client.get("/api/v1/companies/me")
    body = assert_error_shape(response, 401)
    assert "Bearer" in body["message"]
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize(
    "header",
    [
        "Bearer rmx_not-a-real-token",
        "Bearer nope",
        "Basic dXNlcjpwYXNz",
        "Bearer ",
        "Bearer " + "x" * 300,
    ],
)
def test_bad_or_malformed_token_is_401(client, owner, header):
    response = client.get("/api/v1/companies/me", headers={"Authorization": header})
    assert_error_shape(response, 401)
    assert "error=" in response.headers["WWW-Authenticate"]


def test_bad_token_is_refused_even_where_no_token_is_needed(client, owner):
    company, _user, _secret = owner
    assert client.get(f"/api/v1/companies/{company.id}").status_code == 200
    response = client.get(f"/api/v1/companies/{company.id}", headers=bearer("rmx_wrong"))
    assert_error_shape(response, 401)


def test_token_acts_as_its_user_and_records_last_use(client, db, owner):
    company, user, secret = owner
    response = client.get("/api/v1/me", headers=bearer(secret))
    assert response.status_code == 200
    body = response.get_json()
    assert (body["user_id"], body["company_id"], body["role"], body["token_scope"]) == (
        user.id,
        company.id,
        "owner",
        "read_write",
    )
    token = db.get(ApiToken, body["token_id"])
    db.refresh(token)
    assert token.last_used_at is not None and token.last_used_ip == "127.0.0.1"


def test_revoked_token_is_refused_at_once(client, owner):
    _company, _user, secret = owner
    me = client.get("/api/v1/me", headers=bearer(secret)).get_json()
    revoked = client.delete(f"/api/v1/tokens/{me['token_id']}", headers=bearer(secret))
    assert revoked.status_code == 200 and revoked.get_json()["active"] is False
    assert_error_shape(client.get("/api/v1/me", headers=bearer(secret)), 401)


def test_token_of_a_removed_member_is_refused(client, db, owner):
    _company, user, secret = owner
    user.is_active = False
    db.flush()
    assert_error_shape(client.get("/api/v1/me", headers=bearer(secret)), 401)


def test_read_token_is_refused_on_writes_and_nothing_is_stored(client, db, owner):
    company, user, _secret = owner
    read = make_token(db, user, "read")
    before = _sites(db, company.id)
    assert client.get("/api/v1/companies/me", headers=bearer(read)).status_code == 200
    response = client.post(
        "/api/v1/companies/me/sites", json=SITE, headers={**bearer(read), "Accept-Language": "en"}
    )
    body = assert_error_shape(response, 403)
    assert "read" in body["message"]
    assert _sites(db, company.id) == before


def test_browser_session_cookie_is_not_accepted_by_the_api(client, db, owner):
    company, user, _secret = owner
    login(client, user.email)
    assert client.get("/company").status_code == 200  # the browser session works on the web
    assert_error_shape(client.get("/api/v1/companies/me"), 401)
    before = _sites(db, company.id)
    token = csrf_token(client, "/company")
    response = client.post("/api/v1/companies/me/sites", json=SITE, headers={"X-CSRFToken": token})
    assert_error_shape(response, 401)
    assert _sites(db, company.id) == before


def test_api_needs_no_csrf_token_with_a_bearer_token(client, db, owner):
    company, _user, secret = owner
    before = _sites(db, company.id)
    response = client.post("/api/v1/companies/me/sites", json=SITE, headers=bearer(secret))
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["latitude"] == "36.800000"
    assert _sites(db, company.id) == before + 1


# --- error shapes -------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["get", "post", "delete"])
def test_unknown_api_path_is_a_json_404(client, method):
    response = getattr(client, method)("/api/v1/no-such-thing")
    assert_error_shape(response, 404)


def test_unknown_api_path_with_a_token_is_a_json_404(client, owner):
    assert_error_shape(client.get("/api/v1/nope", headers=bearer(owner[2])), 404)


def test_wrong_method_is_a_405_that_keeps_allow(client, owner):
    response = client.put("/api/v1/companies/me", headers=bearer(owner[2]))
    assert_error_shape(response, 405)
    assert "GET" in response.headers["Allow"]


def test_id_out_of_range_is_a_404_not_a_database_error(client):
    assert_error_shape(client.get(f"/api/v1/companies/{2**63}"), 404)
    assert_error_shape(client.get("/api/v1/companies/0"), 404)
    assert_error_shape(client.get("/api/v1/companies/2147483647"), 404)


@pytest.mark.parametrize("value", [36.8, 36, True, None, "36,8", "1e2", " 36.8", "36.8000001"])
def test_decimal_fields_accept_only_decimal_strings(client, db, owner, value):
    company, _user, secret = owner
    before = _sites(db, company.id)
    response = client.post(
        "/api/v1/companies/me/sites", json={**SITE, "latitude": value}, headers=bearer(secret)
    )
    body = assert_error_shape(response, 422)
    assert list(body["errors"]) == ["latitude"]
    assert _sites(db, company.id) == before


def test_schema_errors_name_every_bad_field(client, owner):
    body = {"name": "", "province": "99", "latitude": "80.0", "extra": 1}
    response = client.post("/api/v1/companies/me/sites", json=body, headers=bearer(owner[2]))
    errors = assert_error_shape(response, 422)["errors"]
    assert set(errors) == {"name", "province", "city", "latitude", "longitude", "extra"}
    assert all(isinstance(m, list) and m for m in errors.values())


@pytest.mark.parametrize(
    ("data", "content_type"),
    [("{not json", "application/json"), ("[1, 2]", "application/json"), ("x=1", "text/plain")],
)
def test_unreadable_body_is_a_4xx_in_the_error_shape(client, owner, data, content_type):
    response = client.post(
        "/api/v1/companies/me/sites",
        data=data,
        headers={**bearer(owner[2]), "Content-Type": content_type},
    )
    assert response.status_code in {400, 415, 422}
    assert_error_shape(response, response.status_code)


def test_service_refusals_keep_the_shape(client, db, owner):
    company, _user, secret = owner
    only = company.sites[0].id
    body = assert_error_shape(
        client.delete(
            f"/api/v1/companies/me/sites/{only}",
            headers={**bearer(secret), "Accept-Language": "en"},
        ),
        409,
    )
    assert "at least one site" in body["message"]
    _other, other_user = make_company(db)
    other = make_token(db, other_user)
    assert_error_shape(
        client.delete(f"/api/v1/companies/me/sites/{only}", headers=bearer(other)), 404
    )


def test_error_messages_follow_accept_language(client):
    en = client.get("/api/v1/nope", headers={"Accept-Language": "en"}).get_json()
    zh = client.get("/api/v1/nope", headers={"Accept-Language": "zh-CN"}).get_json()
    assert en["message"] == "There is nothing at this address."
    assert zh["message"] != en["message"]


# --- pagination ---------------------------------------------------------------------------------


def test_lists_are_paged_with_x_pagination(client, db, owner):
    _company, user, secret = owner
    for n in range(4):
        make_token(db, user, "read", name=f"t{n}")  # five tokens in all
    first = client.get("/api/v1/tokens?page_size=2", headers=bearer(secret))
    assert first.status_code == 200 and len(first.get_json()) == 2
    meta = json.loads(first.headers["X-Pagination"])
    assert meta == {
        "total": 5,
        "total_pages": 3,
        "first_page": 1,
        "last_page": 3,
        "page": 1,
        "next_page": 2,
    }
    last = client.get("/api/v1/tokens?page_size=2&page=3", headers=bearer(secret))
    assert len(last.get_json()) == 1
    assert json.loads(last.headers["X-Pagination"])["previous_page"] == 2
    beyond = client.get(f"/api/v1/tokens?page={10**30}", headers=bearer(secret))
    assert beyond.status_code == 200 and beyond.get_json() == []


@pytest.mark.parametrize("query", ["page=0", "page_size=101", "page=x", "active=maybe"])
def test_bad_paging_or_filter_parameters_are_422(client, owner, query):
    response = client.get(f"/api/v1/tokens?{query}", headers=bearer(owner[2]))
    assert_error_shape(response, 422)


def test_lists_filter_by_query_parameters(client, db, owner):
    _company, user, secret = owner
    extra = make_token(db, user, "read", name="old")
    me = client.get("/api/v1/me", headers=bearer(extra)).get_json()
    client.delete(f"/api/v1/tokens/{me['token_id']}", headers=bearer(secret))
    revoked = client.get("/api/v1/tokens?active=false", headers=bearer(secret)).get_json()
    active = client.get("/api/v1/tokens?active=true", headers=bearer(secret)).get_json()
    assert [t["name"] for t in revoked] == ["old"]
    assert all(t["active"] for t in active) and "old" not in [t["name"] for t in active]


# --- idempotency --------------------------------------------------------------------------------


def _post_site(client, secret, key=None, body=None):
    headers = bearer(secret) | ({"Idempotency-Key": key} if key else {})
    return client.post("/api/v1/companies/me/sites", json=body or SITE, headers=headers)


def _site_events(db, company_id):
    return db.scalar(
        select(func.count())
        .select_from(AuditEvent)
        .where(AuditEvent.chain_key == f"company:{company_id}")
        .where(AuditEvent.action == "accounts:site:added")
    )


def test_retry_with_the_same_key_returns_the_first_response_and_acts_once(client, db, owner):
    company, _user, secret = owner
    sites, events = _sites(db, company.id), _site_events(db, company.id)
    first = _post_site(client, secret, "key-1")
    again = _post_site(client, secret, "key-1", {**SITE})  # same JSON, rebuilt
    assert first.status_code == again.status_code == 201
    assert first.get_json() == again.get_json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert _sites(db, company.id) == sites + 1
    assert _site_events(db, company.id) == events + 1


def test_same_key_with_another_body_is_refused_with_422(client, db, owner):
    company, _user, secret = owner
    assert _post_site(client, secret, "key-2").status_code == 201
    sites = _sites(db, company.id)
    response = _post_site(client, secret, "key-2", {**SITE, "name": "Another yard"})
    body = assert_error_shape(response, 422)
    assert "Idempotency-Key" in body["errors"]
    assert _sites(db, company.id) == sites


def test_a_refused_request_does_not_use_up_its_key(client, db, owner):
    company, _user, secret = owner
    assert _post_site(client, secret, "key-3", {**SITE, "latitude": 1}).status_code == 422
    assert _post_site(client, secret, "key-3").status_code == 201


def test_without_a_key_each_post_acts(client, db, owner):
    company, _user, secret = owner
    sites = _sites(db, company.id)
    assert _post_site(client, secret).status_code == 201
    assert _post_site(client, secret).status_code == 201
    assert _sites(db, company.id) == sites + 2


def test_keys_belong_to_their_user(client, db, owner):
    _company, _user, secret = owner
    other_company, other_user = make_company(db)
    other = make_token(db, other_user)
    first = _post_site(client, secret, "shared-key")
    second = _post_site(client, other, "shared-key")
    assert first.status_code == second.status_code == 201
    assert first.get_json()["id"] != second.get_json()["id"]
    assert "Idempotent-Replayed" not in second.headers


@pytest.mark.parametrize("key", ["x" * 201, "has space", "ü"])
def test_malformed_idempotency_key_is_422(client, owner, key):
    response = client.post(
        "/api/v1/companies/me/sites",
        json=SITE,
        headers={**bearer(owner[2]), "Idempotency-Key": key.encode("utf-8").decode("latin-1")},
    )
    body = assert_error_shape(response, 422)
    assert "Idempotency-Key" in body["errors"]


# --- rate limits --------------------------------------------------------------------------------


@pytest.fixture()
def limited_client(app, db):
    """An app with rate limiting on (3 API requests per minute) sharing the test's transaction."""
    was_enabled = limiter.enabled
    limited = create_app(
        {
            **TEST_CONFIG,
            "DATABASE_URL": app.config["DATABASE_URL"],
            "RATELIMIT_ENABLED": True,
            "RATELIMIT_STORAGE_URI": "memory://",
            "API_RATE_LIMIT": "3 per minute",
        }
    )
    limited.extensions["exchange.sessionmaker"] = app.extensions["exchange.sessionmaker"]
    yield limited.test_client()
    limited.extensions["exchange.engine"].dispose()
    limiter.enabled = was_enabled


def test_rate_limit_is_per_token_and_answers_429_in_the_error_shape(limited_client, db, owner):
    company, user, secret = owner
    other = make_token(db, user, "read", name="second")
    for _ in range(3):
        assert limited_client.get("/api/v1/me", headers=bearer(secret)).status_code == 200
    refused = limited_client.get("/api/v1/me", headers=bearer(secret))
    assert_error_shape(refused, 429)
    assert int(refused.headers["Retry-After"]) > 0
    # Another token (even of the same user) has its own allowance; so do anonymous callers.
    assert limited_client.get("/api/v1/me", headers=bearer(other)).status_code == 200
    assert limited_client.get(f"/api/v1/companies/{company.id}").status_code == 200


# --- documents ----------------------------------------------------------------------------------


def test_docs_page_serves_swagger_ui_locally_without_inline_script(client):
    response = client.get("/api/v1/docs")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "<script>" not in html and "http://" not in html.split("<body>")[0]
    assert "cdn" not in html.lower()
    assert response.headers["Content-Security-Policy"].startswith("default-src 'self'")
    assert "unsafe-inline" not in response.headers["Content-Security-Policy"]
    for asset in ("swagger-ui-bundle.js", "swagger-ui-standalone-preset.js", "swagger-ui.css"):
        assert f"/api/v1/docs/assets/{asset}" in html
        served = client.get(f"/api/v1/docs/assets/{asset}")
        assert served.status_code == 200 and len(served.data) > 10_000
        served.close()
    assert client.get("/static/js/api-docs.js").status_code == 200
    assert client.get("/api/v1/docs/assets/index.html").status_code == 404
