"""In-app notices: a new match leaves one notice per side under the bell (unread count in the
top bar), the notices page lists them, opening one marks it read and leads to the match, and
each user's settings decide whether they are told and whether an e-mail goes too."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from exchange.demand import matching
from exchange.demand.models import MatchAlertSetting
from exchange.notifications.models import EmailMessage, Notification
from exchange.notifications.services import BELL_CAP, notify, unread_count
from tests.support.builders import csrf_token, login, make_company, make_lot
from tests.support.demand import HIGH_FE_BAYER, move_first_site, post_demand

BELL = re.compile(r'data-unread="(\d+)"')


@pytest.fixture(autouse=True)
def english(client):
    client.environ_base["HTTP_ACCEPT_LANGUAGE"] = "en"
    return client


@pytest.fixture()
def world(app, db):
    with app.test_request_context():
        producer, producer_owner = make_company(db, producer=True, buyer=False)
        move_first_site(db, producer, "binzhou")
        buyer, buyer_owner = make_company(db, producer=False, buyer=True)
        demand = post_demand(db, buyer, buyer_owner)
        lot = make_lot(db, producer, assay=HIGH_FE_BAYER)
        matching.recompute_for_lot(db, lot.id)
    return {
        "producer_owner": producer_owner,
        "buyer_owner": buyer_owner,
        "demand": demand,
        "lot": lot,
        "app": app,
    }


def _notices(db, user):
    return db.scalars(select(Notification).where(Notification.user_id == user.id)).all()


def _bell(client):
    found = BELL.search(client.get("/wanted").get_data(as_text=True))
    return int(found.group(1)) if found else 0


def test_a_new_match_leaves_one_notice_per_side(world, db):
    [to_buyer] = _notices(db, world["buyer_owner"])
    [to_producer] = _notices(db, world["producer_owner"])
    assert to_buyer.kind == "match_buyer" and to_buyer.url == f"/demands/{world['demand'].id}"
    assert to_producer.kind == "match_producer"
    assert to_producer.url == f"/matching/lots/{world['lot'].id}"
    assert to_buyer.data["count"] == 1 and to_buyer.read_at is None
    # Unmatched and matched again: no second notice for the same pair.
    lot = world["lot"]
    with world["app"].test_request_context():
        lot.status = "withdrawn"
        db.flush()
        matching.recompute_for_lot(db, lot.id)
        lot.status = "published"
        db.flush()
        matching.recompute_for_lot(db, lot.id)
    assert len(_notices(db, world["buyer_owner"])) == 1
    assert len(_notices(db, world["producer_owner"])) == 1


def test_the_bell_counts_unread_notices_and_the_page_marks_them_read(world, client, db):
    assert _bell(client) == 0  # anonymous: no bell
    login(client, world["buyer_owner"].email)
    assert _bell(client) == 1
    page = client.get("/notifications").get_data(as_text=True)
    assert "1 new lot matches your demands" in page
    notice = _notices(db, world["buyer_owner"])[0]
    response = client.post(
        f"/notifications/{notice.id}/open", data={"csrf_token": csrf_token(client, "/")}
    )
    assert response.status_code == 302
    assert response.location.endswith(f"/demands/{world['demand'].id}")
    db.expire_all()
    assert db.get(Notification, notice.id).read_at is not None
    assert _bell(client) == 0


def test_the_bell_stops_counting_at_99_plus(world, client, db):
    user = world["buyer_owner"]
    with world["app"].test_request_context():
        for i in range(BELL_CAP + 20):
            notify(db, user.id, "match_buyer", f"/demands/{i}", {"count": 1})
        db.flush()
    assert unread_count(db, user.id) == BELL_CAP  # counting stops at the cap
    login(client, user.email)
    page = client.get("/wanted").get_data(as_text=True)
    assert _bell(client) == BELL_CAP and ">99+<" in page


def test_mark_all_read(world, client, db):
    login(client, world["producer_owner"].email)
    assert _bell(client) == 1
    response = client.post("/notifications/read", data={"csrf_token": csrf_token(client, "/")})
    assert response.status_code == 302
    assert _bell(client) == 0
    db.expire_all()
    assert all(n.read_at for n in _notices(db, world["producer_owner"]))
    # The buyer's notice is untouched.
    assert all(n.read_at is None for n in _notices(db, world["buyer_owner"]))


def test_notices_are_private_and_writes_need_csrf(world, client, db):
    assert client.get("/notifications").status_code == 302  # anonymous → login
    login(client, world["producer_owner"].email)
    theirs = _notices(db, world["buyer_owner"])[0]
    token = csrf_token(client, "/")
    response = client.post(f"/notifications/{theirs.id}/open", data={"csrf_token": token})
    assert response.status_code == 404
    assert client.post("/notifications/read").status_code == 400
    db.expire_all()
    assert db.get(Notification, theirs.id).read_at is None
    page = client.get("/notifications").get_data(as_text=True)
    assert "new demand matches your lots" in page and "your demands" not in page


def test_settings_decide_notice_and_e_mail(app, db):
    with app.test_request_context():
        producer, producer_owner = make_company(db, producer=True, buyer=False)
        move_first_site(db, producer, "binzhou")
        buyer, buyer_owner = make_company(db, producer=False, buyer=True)
        db.add(
            MatchAlertSetting(
                user_id=buyer_owner.id,
                as_buyer=True,
                as_producer=True,
                min_headroom=0,
                by_email=False,
            )
        )
        db.add(
            MatchAlertSetting(
                user_id=producer_owner.id,
                as_buyer=True,
                as_producer=False,
                min_headroom=0,
                by_email=True,
            )
        )
        db.flush()
        post_demand(db, buyer, buyer_owner)
        lot = make_lot(db, producer, assay=HIGH_FE_BAYER)
        matching.recompute_for_lot(db, lot.id)
    assert [n.kind for n in _notices(db, buyer_owner)] == ["match_buyer"]
    assert _notices(db, producer_owner) == []
    assert db.scalars(select(EmailMessage).where(EmailMessage.kind.like("match_%"))).all() == []


def test_the_alert_form_saves_the_e_mail_switch(world, client, db):
    login(client, world["buyer_owner"].email)
    response = client.post(
        "/demands/alerts",
        data={"csrf_token": csrf_token(client, "/demands"), "as_buyer": "y", "min_headroom": "0"},
    )
    assert response.status_code == 302
    setting = db.get(MatchAlertSetting, world["buyer_owner"].id)
    assert setting.as_buyer and not setting.by_email
