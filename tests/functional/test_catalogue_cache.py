"""The catalogue page's cached fragments: a change shows on the next request, and a fragment
is never reused for another language, another filter or a viewer with other permissions."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from sqlalchemy import event, update

from exchange.db import commit
from exchange.listings import freshness, services
from exchange.listings.models import Lot
from exchange.listings.web import FRAGMENTS
from tests.support.builders import actor_of, login, make_company
from tests.support.lots import listed_lot

D = Decimal
EN_TITLE = "Dealkalized red mud filter cake"
ZH_TITLE = "脱碱赤泥滤饼"
SPEC = "/lots?spec_param=Fe2O3&spec_min=99"


@pytest.fixture()
def market(app, db, client):
    client.environ_base["HTTP_ACCEPT_LANGUAGE"] = "en"
    producer, owner = make_company(db, producer=True, buyer=False)
    buyer, buyer_owner = make_company(db, producer=False, buyer=True)
    with app.test_request_context():
        lot = listed_lot(db, producer, owner, publish=True)
    commit(db)
    return {"producer": producer, "owner": owner, "buyer": buyer_owner, "lot": lot}


def _results(client, path="/lots", **headers):
    body = client.get(path, headers=headers).get_data(as_text=True)
    return body.split('id="lot-results"', 1)[1].split("</ul>", 1)[0]


def test_a_repeated_request_is_served_from_the_cache(client, market):
    _results(client)
    hits = FRAGMENTS.hits
    _results(client)
    assert FRAGMENTS.hits == hits + 1


def test_an_edited_lot_shows_on_the_next_request(app, client, db, market):
    assert EN_TITLE in _results(client)
    market["lot"].title_en = "Renamed cake"
    commit(db)
    body = _results(client)
    assert "Renamed cake" in body and EN_TITLE not in body


def test_a_withdrawn_lot_leaves_the_cached_page_at_once(app, client, db, market):
    lot = market["lot"]
    assert f'href="/lots/{lot.id}"' in _results(client)
    with app.test_request_context():
        services.withdraw_lot(db, actor_of(market["owner"], market["producer"]), lot.id, "sold")
    commit(db)
    assert f'href="/lots/{lot.id}"' not in _results(client)


def test_a_bulk_update_statement_also_counts_as_a_change(client, db, market):
    lot = market["lot"]
    assert "<strong>7 t</strong>" not in _results(client)
    before = freshness.current_version(db)
    db.execute(update(Lot).where(Lot.id == lot.id).values(remaining=D("7")))
    commit(db)
    assert freshness.current_version(db) > before
    assert "<strong>7 t</strong>" in _results(client)


def test_a_new_lot_shows_on_the_next_request(app, client, db, market):
    _results(client)
    with app.test_request_context():
        listed_lot(db, market["producer"], market["owner"], publish=True, title_en="Second lot")
    commit(db)
    assert "Second lot" in _results(client)


def test_languages_never_share_a_fragment(client, market):
    english = _results(client, **{"Accept-Language": "en"})
    chinese = _results(client, **{"Accept-Language": "zh-CN"})
    assert EN_TITLE in english and ZH_TITLE not in english
    assert ZH_TITLE in chinese and EN_TITLE not in chinese
    # and the other way round, each now from the cache
    assert _results(client, **{"Accept-Language": "en"}) == english
    assert ZH_TITLE in _results(client, **{"Accept-Language": "zh-CN"})


def test_a_parsed_url_keeps_its_warnings_in_each_language(client, market):
    """The same URL parses once per language (``web._parsed``): its warnings are shown on
    every request, each in the request's language."""
    url = "/lots?qty_min=abc&sort=price_asc"
    english = "“abc” is not a number; that filter was ignored."
    chinese = "“abc”不是数字，已忽略该筛选条件。"
    for language, expected, other in (
        ("en", english, chinese),
        ("zh-CN", chinese, english),
        ("en", english, chinese),
        ("en", english, chinese),
    ):
        page = client.get(url, headers={"Accept-Language": language}).get_data(as_text=True)
        assert expected in page and other not in page, language


def test_filters_never_share_a_fragment(client, market):
    lot = market["lot"]
    assert f'href="/lots/{lot.id}"' in _results(client, "/lots?q=dealkalized")
    assert f'href="/lots/{lot.id}"' not in _results(client, "/lots?q=nothing-like-this")
    assert f'href="/lots/{lot.id}"' in _results(client, "/lots?q=dealkalized")
    assert f'href="/lots/{lot.id}"' not in _results(client, "/lots?price_min=1000000")


@pytest.mark.parametrize("verified_first", [True, False])
def test_assay_filters_cached_for_a_verified_buyer_are_not_applied_for_anonymous(
    app, client, market, verified_first
):
    """Anonymous viewers' assay filters are dropped: the lot shows for them, never for a
    verified buyer filtering on a value it does not reach (whoever asked first)."""
    lot = f'href="/lots/{market["lot"].id}"'
    anonymous = app.test_client()
    anonymous.environ_base["HTTP_ACCEPT_LANGUAGE"] = "en"
    login(client, market["buyer"].email)
    if verified_first:
        assert lot not in _results(client, SPEC)
        assert lot in _results(anonymous, SPEC)
    else:
        assert lot in _results(anonymous, SPEC)
        assert lot not in _results(client, SPEC)


def _site_choices(page: str) -> str:
    """The distance origin's choices (a site id can equal a province code elsewhere)."""
    found = re.search(r'<select[^>]*name="from_site".*?</select>', page, re.S)
    return found.group(0) if found else ""


def test_the_filter_form_lists_only_the_viewer_s_own_sites(app, client, market):
    producer_site = market["producer"].sites[0]
    option = f'<option value="{producer_site.id}"'
    login(client, market["buyer"].email)
    assert option not in _site_choices(client.get("/lots?sort=distance").get_data(as_text=True))
    owner = app.test_client()
    login(owner, market["owner"].email)
    assert option in _site_choices(owner.get("/lots?sort=distance").get_data(as_text=True))
    assert option not in _site_choices(client.get("/lots?sort=distance").get_data(as_text=True))


def test_distances_from_another_company_s_site_are_never_served(app, client, market):
    """A fragment sorted by the producer's own site is not reused for a buyer naming it."""
    site = market["producer"].sites[0].id
    owner = app.test_client()
    owner.environ_base["HTTP_ACCEPT_LANGUAGE"] = "en"
    login(owner, market["owner"].email)
    assert "km away" in _results(owner, f"/lots?sort=distance&from_site={site}")
    login(client, market["buyer"].email)
    assert "km away" not in _results(client, f"/lots?sort=distance&from_site={site}")


def test_the_version_counts_commits_not_rollbacks(app, tmp_path):
    """Outside tests' shared transaction: the count moves after a commit, not a rollback."""
    from sqlalchemy.orm import Session

    from exchange.accounts.models import Site
    from exchange.db import make_engine
    from exchange.schema import upgrade
    from tests.support.builders import make_company as company_of

    engine = make_engine(f"sqlite:///{tmp_path}/version.sqlite3")
    upgrade(engine)
    try:
        with Session(engine) as session:
            start = freshness.current_version(session)
            with app.app_context():
                company, _owner = company_of(session, producer=True, buyer=False)
            session.commit()
            after_commit = freshness.current_version(session)
            assert after_commit == start + 1
            company.sites[0].name = "renamed"
            session.flush()
            session.rollback()
            assert freshness.current_version(session) == after_commit
            session.execute(update(Site).values(name="renamed again"))
            session.commit()
            assert freshness.current_version(session) == after_commit + 1
    finally:
        engine.dispose()


def test_a_signed_in_buyer_gets_its_user_bell_and_version_in_one_statement(app, client, db, market):
    """For a signed-in viewer the catalogue version comes with the user (and the bell's count):
    a cached page costs one statement, and a change still shows on the next request."""
    login(client, market["buyer"].email)
    assert EN_TITLE in _results(client)
    market["lot"].title_en = "Renamed cake"
    commit(db)
    assert "Renamed cake" in _results(client)  # the version read with the user moved on
    statements: list[str] = []

    def seen(_conn, _cursor, statement, *_args):  # type: ignore[no-untyped-def]
        statements.append(statement)

    engine = app.extensions["exchange.engine"]
    event.listen(engine, "before_cursor_execute", seen)
    try:
        body = client.get("/lots").get_data(as_text=True)
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    assert "Renamed cake" in body and "/logout" in body
    reads = [s for s in statements if "SAVEPOINT" not in s]  # the tests' own transaction
    assert len(reads) == 1 and "catalogue_version" in reads[0], statements
