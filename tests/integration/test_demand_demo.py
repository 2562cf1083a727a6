"""The demo buyers' demands: loaded with the demo companies, once."""

from sqlalchemy import func, select

from exchange.demand.models import Demand
from exchange.demo import DEMANDS, load


def test_demo_demands_are_posted_once_for_the_demo_buyers(app, db):
    with app.test_request_context():
        assert load(db) is True
        assert load(db) is False
    assert db.scalar(select(func.count()).select_from(Demand)) == len(DEMANDS)
    zibo = db.scalar(select(Demand).where(Demand.end_use == "cement_iron_corrective"))
    assert zibo.buyer.legal_name_zh == "淄博示范水泥有限公司"
    assert zibo.delivery_site.company_id == zibo.buyer_id
    assert {(s.parameter, s.min_value, s.max_value) for s in zibo.specs} >= {
        ("Fe2O3", 40, None),
        ("MgO", None, 3),
        ("Na2O+K2O", None, 2),
    }
    assert db.scalar(select(Demand).where(Demand.end_use == "road_base")).max_price < 0
