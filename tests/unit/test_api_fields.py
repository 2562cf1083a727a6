"""The API's wire fields: decimal strings, integer minor units, zoned ISO 8601 times."""

import datetime as dt
import re
from decimal import Decimal

import marshmallow as ma
import pytest
from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from hypothesis import given
from hypothesis import strategies as st

from exchange.apiplatform.fields import MinorUnits, PricePerTonne, Timestamp, Tonnes


class Trade(ma.Schema):
    quantity = Tonnes(required=True)
    price = PricePerTonne(required=True)
    amount = MinorUnits(required=True)
    at = Timestamp(required=True)


GOOD = {
    "quantity": "1250.5",
    "price": "-20.00",
    "amount": 125000,
    "at": "2026-11-28T12:00:00+08:00",
}


def test_a_valid_trade_loads_into_exact_types():
    data = Trade().load(GOOD)
    assert data["quantity"] == Decimal("1250.5") and data["price"] == Decimal("-20.00")
    assert data["amount"] == 125000
    assert data["at"] == dt.datetime(2026, 11, 28, 4, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("quantity", 1250.5),
        ("quantity", 1250),
        ("quantity", "0"),
        ("quantity", "-1"),
        ("quantity", "1.2345"),
        ("quantity", "1e3"),
        ("quantity", "123456789012.5"),
        ("quantity", "NaN"),
        ("price", -20.0),
        ("price", "20.001"),
        ("amount", 12.0),
        ("amount", "125000"),
        ("amount", True),
        ("at", "2026-11-28T12:00:00"),
        ("at", "yesterday"),
    ],
)
def test_wrong_wire_types_are_refused(field, value):
    with pytest.raises(ma.ValidationError) as exc:
        Trade().load({**GOOD, field: value})
    assert list(exc.value.messages) == [field]


def test_dumping_gives_fixed_places_and_utc():
    out = Trade().dump(
        {
            "quantity": Decimal("20000"),
            "price": Decimal("-5.5"),
            "amount": 7,
            "at": dt.datetime(2026, 1, 1, 8, tzinfo=dt.timezone(dt.timedelta(hours=8))),
        }
    )
    assert out == {
        "quantity": "20000.000",
        "price": "-5.50",
        "amount": 7,
        "at": "2026-01-01T00:00:00+00:00",
    }


def test_decimals_are_documented_as_strings_with_their_pattern():
    spec = APISpec("t", "1", "3.0.3", plugins=[MarshmallowPlugin()])
    spec.components.schema("Trade", schema=Trade)
    props = spec.to_dict()["components"]["schemas"]["Trade"]["properties"]
    assert props["quantity"]["type"] == "string" and "pattern" in props["quantity"]
    assert props["price"]["type"] == "string" and props["price"]["pattern"].startswith("^-?")
    assert props["amount"]["type"] == "integer"
    assert props["at"] == {"type": "string", "format": "date-time"}


@given(
    st.decimals(min_value=Decimal("-9999999999.99"), max_value=Decimal("9999999999.99"), places=2)
)
def test_every_price_dumped_matches_the_documented_pattern_and_loads_back(value):
    field = PricePerTonne()
    dumped = field.serialize("p", {"p": value})
    assert re.match(field.pattern, dumped)
    assert field.deserialize(dumped) == value
