"""Register a company → confirm the e-mail → the administrator verifies → the owner logs in.

Walked in Chinese on a laptop and in English on a phone, with screenshots in tests/artifacts.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from exchange.demo import ADMIN_EMAIL, DEMO_PASSWORD
from tests.support.builders import valid_uscc

pytestmark = pytest.mark.e2e

CASES = [
    ("zh", "zh-CN", {"width": 1366, "height": 900}, "注册", "登录"),
    ("en", "en-US", {"width": 390, "height": 844}, "Register", "Log in"),
]


@pytest.mark.parametrize(("lang", "accept", "viewport", "register_word", "login_word"), CASES)
def test_register_verify_login(
    live_server, browser, shots, lang, accept, viewport, register_word, login_word
):
    context = browser.new_context(
        locale=accept, viewport=viewport, extra_http_headers={"Accept-Language": accept}
    )
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    uscc = valid_uscc(9000 + len(lang) * 7 + (1 if lang == "zh" else 2))
    email = f"e2e-{lang}@example.com"

    page.goto(live_server + "/register")
    assert register_word in page.content()
    # First a wrong check digit: the page must say so next to the field, not fail.
    page.fill("#legal_name_zh", "端到端测试水泥有限公司")
    page.fill("#uscc", uscc[:17] + ("0" if uscc[17] != "0" else "1"))
    page.check("#is_buyer")
    page.select_option("#sector", "cement")
    page.select_option("#province", "37")
    page.fill("#city", "淄博市")
    page.fill("#site_name", "一号窑")
    page.fill("#latitude", "36.81")
    page.fill("#longitude", "118.05")
    page.fill("#contact_name", "E2E")
    page.fill("#contact_phone", "0533-0000000")
    page.fill("#email", email)
    page.fill("#password", "e2e-password-123")
    page.fill("#password2", "e2e-password-123")
    page.click("#submit")
    page.wait_for_load_state()
    assert page.locator(".invalid-feedback").count() >= 1
    shots(page, f"{lang}-01-register-bad-uscc")
    page.fill("#uscc", uscc)
    page.fill("#password", "e2e-password-123")
    page.fill("#password2", "e2e-password-123")
    page.click("#submit")
    page.wait_for_load_state()
    assert email in page.content()
    shots(page, f"{lang}-02-check-email")

    # The embedded default shows mail in the outbox; follow the confirmation link.
    page.goto(live_server + "/outbox")
    link = re.search(r"(http://127\.0\.0\.1:\d+/confirm/[\w-]+)", page.content())
    assert link, "confirmation mail not in the outbox"
    page.goto(link.group(1))
    shots(page, f"{lang}-03-confirmed")

    # The administrator verifies the company.
    page.fill("#email", ADMIN_EMAIL)
    page.fill("#password", DEMO_PASSWORD)
    page.click("#submit")
    page.wait_for_load_state()
    page.goto(live_server + "/admin/companies")
    page.click("text=端到端测试水泥有限公司")
    page.wait_for_load_state()
    page.select_option("#decision", "verified")
    page.fill("#reason", "licence checked")
    shots(page, f"{lang}-04-admin-decision")
    page.click("#submit")
    page.wait_for_load_state()
    assert "端到端测试水泥有限公司" not in page.locator("table").inner_text()
    shots(page, f"{lang}-05-queue-after")
    if page.locator(".navbar-toggler").is_visible():
        page.click(".navbar-toggler")  # phone width: the menu is collapsed
        page.wait_for_selector("#nav.show")  # the menu has finished opening
    page.locator("form[action='/logout'] button").click()
    expect(page.locator("form[action='/logout']")).to_have_count(0, timeout=30_000)

    # The owner logs in and sees the verified company.
    page.goto(live_server + "/login")
    assert login_word in page.content()
    page.fill("#email", email)
    page.fill("#password", "e2e-password-123")
    page.click("#submit")
    page.wait_for_load_state()
    page.goto(live_server + "/company")
    body = page.content()
    assert "端到端测试水泥有限公司" in body and uscc in body
    assert ("已认证" in body) if lang == "zh" else ("Verified" in body)
    shots(page, f"{lang}-06-company")
    assert not [e for e in errors if "Content Security Policy" in e], errors
    context.close()
