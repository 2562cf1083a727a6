"""The top bar: menus per kind of viewer (rendered once per process and kept), and the bell's
unread count, read in the statement that loads the signed-in user."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import event

from exchange import navigation
from exchange.db import utcnow
from exchange.notifications.models import Notification
from tests.support.builders import login, make_company, make_user

MENU = re.compile(r'id="menu-(\w+)"')


@pytest.fixture(autouse=True)
def english(client):
    client.environ_base["HTTP_ACCEPT_LANGUAGE"] = "en"
    navigation.clear()
    return client


def _menus(client, **headers) -> set[str]:
    page = client.get("/wanted", headers=headers).get_data(as_text=True)
    return set(MENU.findall(page)) - {"account"}


def test_each_kind_of_viewer_gets_its_own_menus_from_one_process(app, db):
    producer, producer_owner = make_company(db, producer=True, buyer=False)
    _buyer, buyer_owner = make_company(db, producer=False, buyer=True)
    _both, both_owner = make_company(db, producer=True, buyer=True)
    admin = make_user(db, admin=True)
    # Each viewer in turn, in one process: a menu kept for one must never reach another.
    seen = {}
    for name, user in [
        ("producer", producer_owner),
        ("buyer", buyer_owner),
        ("both", both_owner),
        ("admin", admin),
        ("producer again", producer_owner),
    ]:
        client = app.test_client()
        client.environ_base["HTTP_ACCEPT_LANGUAGE"] = "en"
        login(client, user.email)
        seen[name] = _menus(client)
    seen["anonymous"] = _menus(app.test_client())
    assert seen["producer"] == seen["producer again"] == {"selling", "deals"}
    assert seen["buyer"] == {"buying", "deals"}
    assert seen["both"] == {"selling", "buying", "deals"}
    assert seen["admin"] == {"deals", "admin"}
    assert seen["anonymous"] == set()

    # A company that becomes a buyer too sees the buying menu on its next page.
    producer.is_buyer = True
    db.flush()
    client = app.test_client()
    login(client, producer_owner.email)
    assert _menus(client) == {"selling", "buying", "deals"}


def test_menus_follow_the_language(client, db):
    _company, owner = make_company(db, producer=True, buyer=False)
    login(client, owner.email)
    english = client.get("/wanted").get_data(as_text=True)
    chinese = client.get("/wanted", headers={"Accept-Language": "zh-CN"}).get_data(as_text=True)
    assert ">Selling<" in english and ">My lots<" in english
    assert ">Selling<" not in chinese and ">My lots<" not in chinese
    assert client.get("/wanted").get_data(as_text=True).count(">Selling<") == 1


def test_the_bell_count_comes_with_the_user(app, client, db):
    _company, owner = make_company(db, producer=False, buyer=True)
    for _ in range(3):
        db.add(Notification(user_id=owner.id, kind="test", data={}, url="/", created_at=utcnow()))
    db.add(
        Notification(
            user_id=owner.id, kind="test", data={}, url="/", created_at=utcnow(), read_at=utcnow()
        )
    )
    db.flush()
    login(client, owner.email)
    statements: list[str] = []

    def capture(_conn, _cursor, statement, *_rest) -> None:
        statements.append(statement)

    engine = db.get_bind().engine
    event.listen(engine, "before_cursor_execute", capture)
    try:
        page = client.get("/wanted").get_data(as_text=True)
    finally:
        event.remove(engine, "before_cursor_execute", capture)
    assert 'data-unread="3"' in page
    counting = [s for s in statements if "FROM notifications" in s]
    assert len(counting) == 1 and "FROM users" in counting[0]
