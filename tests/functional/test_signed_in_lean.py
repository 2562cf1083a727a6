"""The catalogue (and the lot state every open lot page polls) reads its signed-in user as plain
values (``security.SignedIn``) instead of the ORM's objects. Every kind of viewer must get the
same frame there (menus, account menu, verification and suspension notices) as on a page that
loads the ORM user, and the catalogue's own use of the company (its sites, the assay filters)
must still work."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal

import pytest
from flask import request_finished
from flask_login import current_user

from exchange.accounts.rules import Role, VerificationStatus
from exchange.db import utcnow
from exchange.security import SignedIn
from exchange.trading.services import place_bid
from tests.support.builders import csrf_token, login, make_company, make_user
from tests.support.trading import auction_lot, bidder

NEXT = re.compile(r'<input type="hidden" name="(?:next|csrf_token)" value="[^"]*">')


@pytest.fixture(autouse=True)
def english(client):
    client.environ_base["HTTP_ACCEPT_LANGUAGE"] = "en"
    return client


ALERT = re.compile(r'<div class="alert alert-(?:warning|danger)">.*?</div>', re.S)


def _frame(html: str) -> str:
    """The top bar and the frame's notices (verification, suspension), without per-URL
    values."""
    top = html[html.index('<nav class="navbar') : html.index("</nav>")]
    main = html[html.index('<main id="main"') :]
    return NEXT.sub("", top) + "".join(ALERT.findall(main))


def _viewer(db, kind: str):
    if kind == "admin":
        return make_user(db, admin=True)
    company, user = make_company(
        db,
        verified=kind != "pending",
        producer=kind in ("producer", "suspended", "pending"),
        buyer=kind != "producer",
        role=Role.VIEWER if kind == "viewer" else Role.OWNER,
    )
    if kind == "rejected":
        company.verification_status = VerificationStatus.REJECTED
        company.verification_note = "USCC does not match the licence"
    if kind == "suspended":
        company.suspended_at = utcnow()
        company.suspension_reason = "shill bidding under review"
    db.flush()
    return user


@pytest.mark.parametrize(
    "kind", ["buyer", "producer", "viewer", "pending", "rejected", "suspended", "admin"]
)
def test_the_catalogue_frame_equals_an_orm_pages_frame(app, client, db, kind):
    user = _viewer(db, kind)
    login(client, user.email)
    catalogue = client.get("/lots").get_data(as_text=True)
    wanted = client.get("/wanted").get_data(as_text=True)  # loads the ORM user
    assert _frame(catalogue) == _frame(wanted)
    if kind == "rejected":
        assert "USCC does not match the licence" in catalogue
    if kind == "suspended":
        assert "shill bidding under review" in catalogue
    if kind == "pending":
        assert "waiting for verification" in catalogue


def test_the_catalogue_gets_the_lean_user_and_lists_the_companys_sites(app, client, db):
    company, user = make_company(db, producer=False, buyer=True)
    company.sites[0].name = "Kiln line 2 yard"
    db.flush()
    login(client, user.email)
    seen = []

    def _record(sender, response, **_extra) -> None:
        seen.append(type(current_user._get_current_object()))

    request_finished.connect(_record, app)
    try:
        page = client.get("/lots?sort=distance").get_data(as_text=True)
        client.get("/wanted")
    finally:
        request_finished.disconnect(_record, app)
    assert seen[0] is SignedIn and seen[1] is not SignedIn
    assert "Kiln line 2 yard" in page  # the distance origin choices: the company's sites
    # A verified member may filter on assay values (no "ignored" warning).
    page = client.get("/lots?spec_param=Fe2O3&spec_min=40").get_data(as_text=True)
    assert "they were ignored" not in page


def test_a_deactivated_user_is_anonymous_on_the_catalogue(app, client, db):
    _company, user = make_company(db)
    login(client, user.email)
    user.is_active = False
    db.flush()
    page = client.get("/lots").get_data(as_text=True)
    assert "Log in" in page and 'id="menu-account"' not in page


def test_the_polled_lot_state_gets_the_lean_user_and_shows_the_viewers_own_bid(app, client, db):
    now = utcnow()
    lot = auction_lot(
        db,
        opens_at=now - dt.timedelta(minutes=10),
        closes_at=now + dt.timedelta(hours=1),
        hard_close_at=now + dt.timedelta(hours=2),
    )
    company, user, actor = bidder(db)
    placed = place_bid(db, actor, lot.id, Decimal("110"), Decimal("20"), "steel").bid
    _other, other_user, _actor = bidder(db)
    seen = []

    def _record(sender, response, **_extra) -> None:
        seen.append(type(current_user._get_current_object()))

    request_finished.connect(_record, app)
    try:
        login(client, user.email)
        seen.clear()
        mine = client.get(f"/trading/lots/{lot.id}/state").json
        client.post("/logout", data={"csrf_token": csrf_token(client, "/lots")})
        login(client, other_user.email)
        theirs = client.get(f"/trading/lots/{lot.id}/state").json
    finally:
        request_finished.disconnect(_record, app)
    assert seen[0] is SignedIn
    assert [o["id"] for o in mine["own"]] == [placed.id] and mine["own"][0]["winning"]
    assert theirs["own"] == [] and theirs["live_count"] == 1
