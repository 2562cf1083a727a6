"""A producer lists a lot with an assay and a certificate, an administrator approves it, and a
buyer finds it with a spec filter. Walked in Chinese on a laptop and in English on a phone, with
screenshots of the main pages at both widths in tests/artifacts/screenshots."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from exchange.demo import ADMIN_EMAIL, DEMO_PASSWORD

pytestmark = pytest.mark.e2e

PDF = b"%PDF-1.4\n1 0 obj<</Type/Catalog>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"
LAPTOP, PHONE = {"width": 1366, "height": 900}, {"width": 390, "height": 844}
CASES = [("zh", "zh-CN", LAPTOP, PHONE), ("en", "en-US", PHONE, LAPTOP)]


def _menu(page) -> None:  # type: ignore[no-untyped-def]
    """Open the navbar on a phone, where it is collapsed."""
    toggler = page.locator(".navbar-toggler")
    if toggler.is_visible() and toggler.get_attribute("aria-expanded") != "true":
        toggler.click()
        page.wait_for_selector("#nav.show")  # the menu has finished opening


def _login(page, base: str, email: str, lang: str) -> None:  # type: ignore[no-untyped-def]
    page.goto(base + "/login")
    page.fill("#email", email)
    page.fill("#password", DEMO_PASSWORD)
    page.click("#submit")
    page.wait_for_load_state()
    switch = page.locator(f"form[action='/lang/{'en' if lang == 'en' else 'zh_Hans_CN'}'] button")
    if switch.count():  # demo users saved Chinese; switch to the walk's language
        _menu(page)
        switch.click()
        page.wait_for_load_state()


def _logout(page) -> None:  # type: ignore[no-untyped-def]
    _menu(page)
    page.locator("form[action='/logout'] button").click()
    expect(page.locator("form[action='/logout']")).to_have_count(0, timeout=30_000)


@pytest.mark.parametrize(("lang", "accept", "viewport", "other"), CASES)
def test_list_approve_and_find_a_lot(
    live_server, browser, shots, tmp_path, lang, accept, viewport, other
):
    context = browser.new_context(
        locale=accept, viewport=viewport, extra_http_headers={"Accept-Language": accept}
    )
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    base = live_server
    title = f"E2E 脱碱赤泥 {lang}"
    # The producer lists a lot.
    _login(page, base, "baise@demo.redmud.example", lang)
    page.goto(base + "/my/lots/new")
    page.select_option("#material_code", "rm_bayer_dealkalized")
    page.select_option("#site_id", index=1)
    page.fill("#title_zh", title)
    page.fill("#title_en", f"E2E dealkalized red mud {lang}")
    page.fill("#description_en", "Filter cake <b>not bold</b>, sampled by the lab.")
    page.fill("#quantity", "2000")
    page.select_option("#basis", "dry")
    page.fill("#min_order", "100")
    page.fill("#price", "-12.5")
    preview = page.locator("#price-preview").inner_text()
    assert "12.50" in preview
    shots(page, f"{lang}-lots-01-new-lot")
    page.locator("#lot-form input[type=submit]").click()
    page.wait_for_load_state()
    match = re.search(r"/lots/(\d+)/assay", page.url)
    assert match, page.url
    lot_id = match.group(1)

    # ...with an assay: one bad value first, shown next to its field.
    page.fill("#lab_name", "广西有色检测中心")
    page.fill("#accreditation_no", "CMA 2021001234")
    page.fill("#sampled_on", "2026-11-20")
    values = {
        "Fe2O3": "46.2",
        "TFe": "32.4",
        "Al2O3": "17.5",
        "SiO2": "10.1",
        "CaO": "7.2",
        "Na2O": "0.6",
        "K2O": "0.1",
        "MgO": "1.1",
        "TiO2": "5.2",
        "LOI": "9.8",
        "Cl": "0.02",
        "leach_pH": "10.2",
        "Ra226": "60",
        "Th232": "70",
        "K40": "150",
    }
    for code, value in values.items():
        page.fill(f"#v_{code}", value)
    page.fill("#v_CaO", "107")
    page.locator("#assay-form input[type=submit]").click()
    page.wait_for_load_state()
    assert page.locator("#v_CaO ~ .invalid-feedback, .invalid-feedback").count() >= 1
    shots(page, f"{lang}-lots-02-assay-error")
    page.fill("#v_CaO", "7.2")
    page.locator("#assay-form input[type=submit]").click()
    page.wait_for_load_state()
    assert page.url.endswith(f"/lots/{lot_id}")

    # ...and a certificate; then sends it for review.
    certificate = tmp_path / "检测报告.pdf"
    certificate.write_bytes(PDF)
    page.set_input_files("#file", str(certificate))
    page.locator("form[action$='/certificates'] input[type=submit]").click()
    page.wait_for_load_state()
    assert "检测报告.pdf" in page.locator("#files").inner_text()
    assert "<b>" in page.locator("#description").inner_text()  # shown, not rendered
    page.locator("form[action$='/submit'] button").click()
    page.wait_for_load_state()
    shots(page, f"{lang}-lots-03-producer-lot")
    _logout(page)

    # The administrator approves it.
    _login(page, base, ADMIN_EMAIL, lang)
    number = f"L{int(lot_id):06d}"
    page.goto(base + "/admin/lots")
    assert number in page.locator("main").inner_text()
    shots(page, f"{lang}-lots-04-moderation")
    page.locator(f"#lot-{lot_id} form[action$='/approve'] button").click()
    page.wait_for_load_state()
    assert number not in page.locator("main").inner_text()
    _logout(page)

    # A cement plant finds it with a spec filter: Fe2O3 ≥ 45 and Na2O ≤ 0.7.
    _login(page, base, "zibo@demo.redmud.example", lang)
    page.goto(base + "/lots")
    toggle = page.locator("button[data-bs-target='#filters']")
    if toggle.is_visible():
        toggle.click()
        page.wait_for_timeout(400)
    page.locator("select[name=spec_param]").nth(0).select_option("Fe2O3")
    page.locator("input[name=spec_min]").nth(0).fill("45")
    page.locator("select[name=spec_param]").nth(1).select_option("Na2O")
    page.locator("input[name=spec_max]").nth(1).fill("0.7")
    page.select_option("#sort", "distance")
    page.locator("#catalogue-filters button[type=submit]").click()
    page.wait_for_load_state()
    results = page.locator("#lot-results").inner_text()
    assert title in results or f"E2E dealkalized red mud {lang}" in results
    assert "脱碱拜耳法赤泥滤饼" not in results  # the demo lot has Fe2O3 42.5 %
    assert ("公里" if lang == "zh" else "km") in results  # sorted by distance, which is shown
    shots(page, f"{lang}-lots-05-catalogue-spec-filter")
    catalogue_url = page.url
    page.locator("#lot-results a").first.click()
    page.wait_for_load_state()
    # I_r = 60/370 + 70/260 + 150/4200 = 0.467, rounded up (GB 6566).
    assert page.locator("#i-r").inner_text().strip() == "0.47"
    page.locator("button[data-bs-target='#use-cement_iron_corrective']").click()
    page.wait_for_timeout(400)
    body = page.locator("main").inner_text()
    assert "12.50" in body and "GB 6566-2010" in body and "检测报告.pdf" in body
    shots(page, f"{lang}-lots-06-buyer-lot")

    # The same two pages at the other width.
    page.set_viewport_size(other)
    page.goto(catalogue_url)
    shots(page, f"{lang}-lots-07-catalogue-{other['width']}")
    page.goto(f"{base}/lots/{lot_id}")
    shots(page, f"{lang}-lots-08-lot-{other['width']}")
    assert not [e for e in errors if "Content Security Policy" in e], errors
    context.close()
