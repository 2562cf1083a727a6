"""Migration 0018 on a database that already has matches: they keep working both ways."""

from __future__ import annotations

import uuid
from decimal import Decimal

import pytest
import sqlalchemy as sa
from sqlalchemy import select

from exchange import create_app
from exchange.db import session_scope
from exchange.demand import matching
from exchange.demand.models import Match
from exchange.schema import downgrade, upgrade
from tests.conftest import BACKENDS, TEST_CONFIG, create_database, drop_database
from tests.support.builders import make_company, make_lot
from tests.support.demand import HIGH_FE_BAYER, move_first_site, post_demand


def _explained(app) -> dict[tuple[int, int], dict]:
    with session_scope(app) as s:
        rows = matching.explain(s, list(s.scalars(select(Match))))
        return {(m.lot_id, m.demand_id): m.explanation for m in rows}


@pytest.mark.parametrize("backend", BACKENDS)
def test_downgrading_stores_every_explanation_and_upgrading_drops_them(tmp_path, backend):
    name = f"rmx_mig_{uuid.uuid4().hex[:8]}"
    url = create_database(backend, tmp_path, name)  # migrated to head
    app = create_app({**TEST_CONFIG, "DATABASE_URL": url})
    engine = app.extensions["exchange.engine"]
    try:
        with app.test_request_context(), session_scope(app) as s:
            producer, _ = make_company(s, producer=True, buyer=False)
            move_first_site(s, producer, "binzhou")
            make_lot(s, producer, assay=HIGH_FE_BAYER, price="-20")
            make_lot(s, producer, assay=HIGH_FE_BAYER, price="-60")
            buyer, owner = make_company(s, producer=False, buyer=True)
            post_demand(s, buyer, owner, max_price=Decimal("200"))
        with app.test_request_context():
            expected = _explained(app)
        assert len(expected) == 2 and all(expected.values())

        downgrade(engine, "0017_demand_more")
        table = sa.table(
            "matches",
            sa.column("lot_id", sa.Integer()),
            sa.column("demand_id", sa.Integer()),
            sa.column("explanation", sa.JSON()),
        )
        with engine.connect() as c:
            stored = {(r.lot_id, r.demand_id): r.explanation for r in c.execute(select(table))}
        assert stored == expected

        upgrade(engine)
        columns = {c["name"] for c in sa.inspect(engine).get_columns("matches")}
        assert "explanation" not in columns and "landed_cost" in columns
        with app.test_request_context():
            assert _explained(app) == expected
    finally:
        engine.dispose()
        drop_database(backend, name)
