"""The administrator searches the trade desk and opens the demo contract's audit timeline, at a
laptop's and a phone's width, in Chinese and English; screenshots."""

from __future__ import annotations

import pytest

from exchange.demo import ADMIN_EMAIL, DEMO_PASSWORD

pytestmark = pytest.mark.e2e

VIEWS = [
    ("zh", "zh-CN", {"width": 1366, "height": 900}),
    ("en", "en-US", {"width": 390, "height": 844}),
]


@pytest.mark.parametrize(("lang", "accept", "viewport"), VIEWS)
def test_admin_opens_a_contract_from_the_desk_with_its_verified_chain(
    live_server, browser, shots, lang, accept, viewport
):
    context = browser.new_context(
        locale=accept, viewport=viewport, extra_http_headers={"Accept-Language": accept}
    )
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    tag = f"{lang}-{viewport['width']}-desk"
    page.goto(live_server + "/login")
    page.fill("#email", ADMIN_EMAIL)
    page.fill("#password", DEMO_PASSWORD)
    page.click("#submit")
    page.wait_for_url(lambda url: "/login" not in url)

    page.goto(live_server + "/admin/desk?kind=contract")
    results = page.locator("#desk-results a.list-group-item")
    assert results.count() >= 1
    # Nothing wider than the screen: the filters stack and the tabs scroll on a phone.
    assert page.evaluate("document.documentElement.scrollWidth") <= viewport["width"]
    shots(page, f"{tag}-01-contracts")

    page.locator("#desk-kinds a[href*='kind=delivery']").first.click()
    assert page.locator("#desk-results a.list-group-item").count() >= 1
    shots(page, f"{tag}-02-deliveries")

    page.goto(live_server + "/admin/desk?kind=contract")
    page.locator("#desk-results a.list-group-item").first.click()
    verdict = page.locator("#chain-verdict")
    assert verdict.is_visible()
    assert "text-bg-success" in (verdict.get_attribute("class") or "")
    assert page.locator("#timeline li").count() >= 3
    assert page.evaluate("document.documentElement.scrollWidth") <= viewport["width"]
    shots(page, f"{tag}-03-timeline")
    assert not [e for e in errors if "Content Security Policy" in e], errors
    context.close()
