"""Registration, login, language and security behaviour through the Flask test client."""

import re

from sqlalchemy import func, select

from exchange import create_app
from exchange.accounts.models import Company, User
from exchange.notifications.models import EmailMessage
from tests.conftest import TEST_CONFIG
from tests.support.builders import PASSWORD, csrf_token, login, make_user, valid_uscc

EN = {"Accept-Language": "en"}


def _form(client, **changes):
    data = {
        "legal_name_zh": "页面注册测试有限公司",
        "uscc": valid_uscc(),
        "is_buyer": "y",
        "sector": "cement",
        "province": "37",
        "city": "淄博市",
        "site_name": "一号窑",
        "latitude": "36.8",
        "longitude": "118.0",
        "contact_name": "Li",
        "contact_phone": "1",
        "email": "page-register@example.com",
        "password": "long-enough-pw",
        "password2": "long-enough-pw",
        "csrf_token": csrf_token(client, "/register"),
    }
    data.update(changes)
    return data


def test_register_with_wrong_check_digit_shows_a_field_message_and_stores_nothing(client, db):
    uscc = valid_uscc()
    bad = uscc[:17] + ("0" if uscc[17] != "0" else "1")
    before = db.scalar(select(func.count()).select_from(Company))
    response = client.post("/register", data=_form(client, uscc=bad), headers=EN)
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert "check digit" in page and "invalid-feedback" in page
    assert db.scalar(select(func.count()).select_from(Company)) == before


def test_register_missing_fields_and_bad_coordinates_are_field_errors(client, db):
    response = client.post(
        "/register",
        headers=EN,
        data=_form(client, legal_name_zh="", latitude="95", is_buyer="", password2="different-pw"),
    )
    page = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "This field is required." in page
    assert "between 3 and 54" in page
    assert "Choose producer, buyer or both." in page
    assert "The passwords differ." in page


def test_register_then_confirm_then_login(client, db):
    response = client.post("/register", data=_form(client), headers=EN)
    assert response.status_code == 200 and "page-register@example.com" in response.get_data(
        as_text=True
    )
    mail = db.scalar(
        select(EmailMessage).where(EmailMessage.recipient == "page-register@example.com")
    )
    token = re.search(r"/confirm/([\w-]+)", mail.body).group(1)
    assert client.get(f"/confirm/{token}").status_code == 302
    login(client, "page-register@example.com", "long-enough-pw")
    assert "页面注册测试有限公司" in client.get("/company").get_data(as_text=True)


def test_register_with_a_known_email_looks_the_same(client, db):
    user = make_user(db, "known@example.com")
    response = client.post("/register", data=_form(client, email=user.email), headers=EN)
    assert response.status_code == 200
    assert "known@example.com" in response.get_data(as_text=True)


def test_login_failure_message_does_not_reveal_whether_the_email_exists(client, db):
    user = make_user(db, "someone@example.com")
    token = csrf_token(client, "/login")
    known = client.post(
        "/login", headers=EN, data={"email": user.email, "password": "x" * 12, "csrf_token": token}
    )
    unknown = client.post(
        "/login",
        headers=EN,
        data={"email": "nobody@example.com", "password": "x" * 12, "csrf_token": token},
    )
    assert known.status_code == unknown.status_code == 401
    assert "E-mail or password is wrong." in known.get_data(as_text=True)
    assert "E-mail or password is wrong." in unknown.get_data(as_text=True)


def test_forgot_password_answers_the_same_for_unknown_addresses(client, db):
    make_user(db, "real@example.com")
    for email in ("real@example.com", "ghost@example.com"):
        response = client.post(
            "/password/forgot",
            headers=EN,
            data={"email": email, "csrf_token": csrf_token(client, "/password/forgot")},
            follow_redirects=True,
        )
        assert "If an account uses this address" in response.get_data(as_text=True)
    sent = db.scalars(select(EmailMessage.recipient).where(EmailMessage.kind == "password_reset"))
    assert list(sent) == ["real@example.com"]


def test_language_follows_the_browser_and_the_choice_sticks(client, db):
    assert "Log in" in client.get("/login", headers=EN).get_data(as_text=True)
    assert "登录" in client.get("/login", headers={"Accept-Language": "zh-CN"}).get_data(
        as_text=True
    )
    token = csrf_token(client, "/login")
    client.post("/lang/en", data={"csrf_token": token, "next": "/login"})
    assert "Log in" in client.get("/login", headers={"Accept-Language": "zh-CN"}).get_data(
        as_text=True
    )


def test_logged_in_users_language_choice_is_saved(client, db):
    user = make_user(db)
    login(client, user.email)
    client.post("/lang/en", data={"csrf_token": csrf_token(client, "/"), "next": "/"})
    db.expire_all()
    assert db.get(User, user.id).locale == "en"


def test_security_headers_on_every_page(client):
    response = client.get("/login")
    csp = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    cookie = response.headers.get("Set-Cookie", "")
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie


def test_pages_load_no_assets_from_other_hosts(client):
    page = client.get("/").get_data(as_text=True)
    assert not re.search(r'(src|href)="(https?:)?//', page)


def test_not_found_and_method_not_allowed_pages(client):
    assert client.get("/no-such-page").status_code == 404
    response = client.get("/logout")
    assert response.status_code == 405 and "POST" in response.headers["Allow"]


def test_outbox_is_closed_to_visitors_when_smtp_is_configured(app, db):
    app.config["SHOW_OUTBOX"] = False
    try:
        assert app.test_client().get("/outbox").status_code == 404
    finally:
        app.config["SHOW_OUTBOX"] = True


def test_login_is_rate_limited(backend, tmp_path):
    from exchange.extensions import limiter

    _name, url = backend
    limited = create_app(
        {**TEST_CONFIG, "DATABASE_URL": url, "RATELIMIT_ENABLED": True, "WTF_CSRF_ENABLED": False}
    )
    try:
        client = limited.test_client()
        statuses = [
            client.post("/login", data={"email": "a@example.com", "password": "x" * 12}).status_code
            for _ in range(12)
        ]
        assert statuses[:10] == [401] * 10
        assert statuses[10:] == [429, 429]
    finally:
        # The limiter is one extension object shared by every app in this process; switch it
        # back off for the other tests' app.
        limiter.enabled = False
        limited.extensions["exchange.engine"].dispose()


def test_change_password_page_validates_fields(client, db):
    user = make_user(db)
    login(client, user.email)
    response = client.post(
        "/account/password",
        headers=EN,
        data={
            "current_password": PASSWORD,
            "new_password": "short",
            "new_password2": "short",
            "csrf_token": csrf_token(client, "/account/password"),
        },
    )
    assert "Use between 10 and 200 characters." in response.get_data(as_text=True)
