"""An owner creates an API token in the browser, copies it once, uses it, revokes it; the
browsable API docs render from local assets under the site's CSP.

Walked in Chinese on a laptop and in English on a phone, with screenshots in tests/artifacts.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest

from exchange.demo import DEMO_PASSWORD

pytestmark = pytest.mark.e2e

CASES = [
    ("zh", "zh-CN", {"width": 1366, "height": 900}, "binzhou@demo.redmud.example"),
    ("en", "en-US", {"width": 390, "height": 844}, "tangshan@demo.redmud.example"),
]


def _api(base: str, path: str, secret: str) -> tuple[int, dict]:
    request = urllib.request.Request(base + path, headers={"Authorization": f"Bearer {secret}"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 (loopback)
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


@pytest.mark.parametrize(("lang", "accept", "viewport", "email"), CASES)
def test_create_use_and_revoke_a_token_then_read_the_docs(
    live_server, browser, shots, lang, accept, viewport, email
):
    context = browser.new_context(
        locale=accept, viewport=viewport, extra_http_headers={"Accept-Language": accept}
    )
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)

    page.goto(live_server + "/login")
    page.fill("#email", email)
    page.fill("#password", DEMO_PASSWORD)
    page.click("#submit")
    page.wait_for_load_state()
    page.goto(live_server + "/account/tokens/")
    shots(page, f"{lang}-api-01-tokens-empty")

    page.fill("#name", "ERP")
    page.select_option("#scope", "read")
    page.click("#submit")
    page.wait_for_load_state()
    secret = page.input_value("#new-token")
    assert secret.startswith("rmx_")
    shots(page, f"{lang}-api-02-token-created")

    status, me = _api(live_server, "/api/v1/me", secret)
    assert status == 200 and me["token_scope"] == "read"
    status, company = _api(live_server, "/api/v1/companies/me", secret)
    assert status == 200 and company["sites"]

    page.goto(live_server + "/account/tokens/")  # shown once: the list never carries it
    assert secret not in page.content()
    page.locator("form[action$='/revoke'] button").first.click()
    page.wait_for_load_state()
    assert page.locator(".alert-success").count() == 1
    shots(page, f"{lang}-api-03-token-revoked")
    status, body = _api(live_server, "/api/v1/me", secret)
    assert status == 401 and set(body) == {"code", "status", "message", "errors"}

    page.goto(live_server + "/api/v1/docs")
    page.wait_for_selector(".swagger-ui .opblock", timeout=15000)
    assert page.locator(".opblock").count() >= 9
    shots(page, f"{lang}-api-04-docs")
    assert not [e for e in errors if "Content Security Policy" in e or "Refused" in e], errors
    context.close()
