"""Migration 0004 on a database that already has lots: the copied catalogue columns are filled."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import text

from exchange.db import make_engine
from exchange.listings.rules import unit_vector
from exchange.schema import downgrade, upgrade
from tests.conftest import BACKENDS, create_database, drop_database


@pytest.mark.parametrize("backend", BACKENDS)
def test_upgrading_fills_city_unit_vector_and_search_text_of_existing_lots(tmp_path, backend):
    name = f"rmx_mig_{uuid.uuid4().hex[:8]}"
    engine = make_engine(create_database(backend, tmp_path, name))  # migrated to head
    try:
        downgrade(engine, "0003_awards")
        with engine.begin() as c:
            c.execute(
                text(
                    "INSERT INTO companies (id, legal_name_zh, uscc, is_producer, is_buyer, sector,"
                    " province, city, contact_name, contact_phone, contact_email,"
                    " verification_status) VALUES (1, 'A', 'U1', true, false, 'alumina', '45',"
                    " 'c', 'n', '1', 'e@x', 'verified')"
                )
            )
            c.execute(
                text(
                    "INSERT INTO sites (id, company_id, name, province, city, latitude, longitude)"
                    " VALUES (1, 1, 'Yard', '45', '百色市', 23.902, 106.618)"
                )
            )
            c.execute(
                text(
                    "INSERT INTO lots (id, producer_id, site_id, material_code, material_family,"
                    " province, title_zh, title_en, description_en, quantity, remaining, basis,"
                    " min_order, recurrence, available_from, sale_mode, price, currency,"
                    " anti_snipe_minutes, delivery_terms, status) VALUES (1, 1, 1,"
                    " 'rm_bayer_dealkalized', 'red_mud', '45', '脱碱赤泥', 'Dealkalized',"
                    " 'Low SODIUM', 100, 100, 'dry', 10, 'one_off', '2026-12-01', 'buy_now',"
                    " 12, 'CNY', 0, 'ex_works', 'published')"
                )
            )
        upgrade(engine)
        with engine.connect() as c:
            row = c.execute(text("SELECT city, geo_x, geo_y, geo_z, search_text FROM lots")).one()
        assert row.city == "百色市"
        assert (row.geo_x, row.geo_y, row.geo_z) == pytest.approx(unit_vector(23.902, 106.618))
        assert row.search_text == "脱碱赤泥 dealkalized low sodium"
    finally:
        engine.dispose()
        drop_database(backend, name)
