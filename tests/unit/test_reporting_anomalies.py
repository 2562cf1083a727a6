"""Every anomaly rule with a case it must flag and a case it must not."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from exchange.reporting import anomalies
from exchange.reporting.anomalies import Rule
from exchange.reporting.facts import (
    AffiliationFact,
    AwardFact,
    BidFact,
    CompanyFact,
    LoginBurstFact,
    LotFact,
    SiteFact,
    TradeFact,
)
from tests.unit.test_reporting_rules import delivery

D = Decimal
NOW = dt.datetime(2026, 11, 28, 8, tzinfo=dt.UTC)


def company(cid: int, uscc: str = "", emails=(), users=(), sites=()) -> CompanyFact:
    return CompanyFact(
        cid,
        f"company {cid}",
        uscc or f"9137{cid:04d}MA00000{cid:03d}",
        frozenset(users),
        frozenset(emails),
        tuple(sites),
    )


def lot(lot_id: int = 1, producer: int = 1, **kw: object) -> LotFact:
    fields: dict[str, object] = {
        "lot_id": lot_id,
        "producer_id": producer,
        "material_code": "rm_bayer_filter_cake",
        "quantity": D("20000"),
        "status": "published",
        "reserve_price": None,
        "created_at": NOW - dt.timedelta(days=3),
    }
    fields.update(kw)
    return LotFact(**fields)  # type: ignore[arg-type]


def bid(bid_id: int, company_id: int, status: str = "active", lot_id: int = 1, days_ago: int = 1):
    return BidFact(
        bid_id,
        lot_id,
        company_id,
        None,
        D("-10"),
        D("500"),
        status,
        NOW - dt.timedelta(days=days_ago),
    )


# --- related companies bidding on each other's lots ---


def test_bid_from_a_company_sharing_a_corporate_mail_domain_is_flagged():
    companies = [
        company(1, emails=["sales@chalco-demo.cn"]),
        company(2, emails=["buyer@chalco-demo.cn"]),
    ]
    found = anomalies.related_bidding(companies, [], [lot()], [bid(7, 2)])
    assert len(found) == 1
    assert found[0].rule is Rule.RELATED_BIDDING
    assert found[0].data["reasons"] == [["email_domain", "chalco-demo.cn"]]
    assert "chalco-demo.cn" in found[0].evidence and found[0].company_ids == (1, 2)


def test_public_mail_and_reserved_test_domains_relate_nobody():
    companies = [
        company(1, emails=["a@qq.com", "x@demo.redmud.example"]),
        company(2, emails=["b@qq.com", "y@demo.redmud.example"]),
    ]
    assert anomalies.related_bidding(companies, [], [lot()], [bid(7, 2)]) == []


def test_shared_former_member_relates_two_companies():
    companies = [company(1, users=[5, 6]), company(2, users=[6])]
    found = anomalies.related_bidding(companies, [], [lot()], [bid(7, 2)])
    assert found[0].data["reasons"] == [["shared_user", "6"]]


def test_uscc_prefix_needs_a_site_within_a_kilometre():
    near = SiteFact(10, D("36.800000"), D("118.050000"))
    close = SiteFact(20, D("36.805000"), D("118.050000"))  # ~556 m north
    far = SiteFact(30, D("36.900000"), D("118.050000"))  # ~11 km north
    prefix = "91370300"
    related = [
        company(1, prefix + "MA3D4G7L2G", sites=[near]),
        company(2, prefix + "MA3D4G7L3A", sites=[close]),
    ]
    unrelated = [
        company(1, prefix + "MA3D4G7L2G", sites=[near]),
        company(2, prefix + "MA3D4G7L3A", sites=[far]),
    ]
    assert (
        anomalies.related_bidding(related, [], [lot()], [bid(7, 2)])[0].data["reasons"][0][0]
        == "uscc_and_site"
    )
    assert anomalies.related_bidding(unrelated, [], [lot()], [bid(7, 2)]) == []


def test_declared_affiliation_flags_an_award_between_the_pair():
    trade = TradeFact(3, 1, 1, 2, "red_mud", "37", D("-5"), D("1000"), NOW, NOW.date())
    found = anomalies.related_bidding(
        [company(1), company(2)], [AffiliationFact(1, 2, "parent_subsidiary")], [lot()], [], [trade]
    )
    assert found[0].data["award_ids"] == ["3"]
    assert found[0].key == "related_bidding:1:1:2"


def test_unrelated_bidder_is_not_flagged():
    found = anomalies.related_bidding([company(1), company(2)], [], [lot()], [bid(7, 2)])
    assert found == []


# --- bid and withdraw ---


def test_repeated_withdrawals_are_flagged():
    bids = [bid(i, 2, "withdrawn", lot_id=i) for i in range(1, 4)] + [bid(9, 2, "lost")]
    found = anomalies.bid_withdrawals(bids, NOW)
    assert [f.data["withdrawn"] for f in found] == [3]
    assert found[0].data["bids"] == 4


def test_occasional_withdrawal_or_old_ones_are_not_flagged():
    few = [bid(1, 2, "withdrawn"), bid(2, 2, "withdrawn"), bid(3, 2, "won")]
    old = [bid(i, 3, "withdrawn", days_ago=200) for i in range(4, 9)]
    mostly_kept = [bid(i, 4, "withdrawn") for i in range(10, 13)] + [
        bid(i, 4, "won") for i in range(13, 20)
    ]
    assert anomalies.bid_withdrawals(few + old + mostly_kept, NOW) == []


# --- never signs ---


def award(aid: int, buyer: int, status: str, days_ago: int = 5) -> AwardFact:
    return AwardFact(aid, aid, buyer, status, NOW - dt.timedelta(days=days_ago))


def test_buyer_who_lets_awards_lapse_is_flagged():
    found = anomalies.never_signs(
        [award(1, 2, "lapsed"), award(2, 2, "lapsed"), award(3, 2, "contracted")], NOW
    )
    assert found[0].data == {
        "company_id": 2,
        "lapsed": 2,
        "awards": 3,
        "window_days": 180,
        "award_ids": [1, 2],
        "lot_ids": [1, 2],
    }


def test_buyer_who_signs_most_awards_is_not_flagged():
    awards = [award(1, 2, "lapsed")] + [award(i, 2, "contracted") for i in range(2, 6)]
    awards += [award(9, 3, "open"), award(10, 3, "open")]  # open awards are undecided
    assert anomalies.never_signs(awards, NOW) == []


# --- prices ---


def trades_around(prices: list[str], province: str = "37") -> list[TradeFact]:
    start = NOW - dt.timedelta(days=30)
    return [
        TradeFact(
            i + 1,
            i + 1,
            1,
            2,
            "red_mud",
            province,
            D(p),
            D("100"),
            start + dt.timedelta(days=i),
            (start + dt.timedelta(days=i)).date(),
        )
        for i, p in enumerate(prices)
    ]


def test_price_far_from_recent_prices_is_flagged_with_its_robust_z():
    # reference −20, −18, −22, −19, −21: median −20, MAD 1; −120 → z = 0.6745 × −100 = −67.5
    found = anomalies.price_outliers(trades_around(["-20", "-18", "-22", "-19", "-21", "-120"]))
    assert len(found) == 1
    assert found[0].data["trade_id"] == 6 and found[0].data["z"] == -67.45
    assert found[0].data["scope"] == "province"


def test_price_within_the_usual_spread_is_not_flagged():
    assert anomalies.price_outliers(trades_around(["-20", "-18", "-22", "-19", "-21", "-23"])) == []


def test_too_few_reference_prices_flag_nothing():
    assert anomalies.price_outliers(trades_around(["-20", "-20", "200"])) == []


def test_identical_reference_prices_use_the_absolute_difference():
    same = ["-20"] * 5
    assert anomalies.price_outliers(trades_around([*same, "-21"])) == []
    found = anomalies.price_outliers(trades_around([*same, "-40"]))
    assert found[0].data["z"] is None


def test_robust_z_matches_the_modified_z_formula():
    score = anomalies.robust_z(D("10"), [D(1), D(2), D(3), D(4), D(5)])
    assert score.median == 3 and score.mad == 1
    assert score.z == pytest.approx(0.6745 * 7)


@given(st.lists(st.decimals(-500, 500, places=2), min_size=5, max_size=40))
def test_the_median_price_is_never_an_outlier(prices):
    reference = sorted(prices)
    score = anomalies.robust_z(reference[len(reference) // 2], reference)
    assert score.z is None or abs(score.z) <= 3.5 or len(set(reference)) == 1


# --- weights ---


def test_received_weight_beyond_tolerance_is_flagged():
    found = anomalies.weight_discrepancies(
        [delivery(dispatched_t=D("30.000"), received_t=D("29.500"))]
    )
    assert found[0].data["difference_pct"] == "-1.67"


def test_received_weight_within_tolerance_or_not_weighed_is_not_flagged():
    assert (
        anomalies.weight_discrepancies(
            [
                delivery(dispatched_t=D("30.000"), received_t=D("29.800")),
                delivery(delivery_id=2, received_t=None),
            ]
        )
        == []
    )


# --- relisting to dodge a reserve ---


def test_relisting_after_a_failed_reserve_is_flagged():
    closed = NOW - dt.timedelta(days=10)
    old = lot(1, status="unsold", reserve_price=D("-5"), closed_at=closed)
    new = lot(2, quantity=D("19000"), created_at=closed + dt.timedelta(days=2), reserve_price=None)
    found = anomalies.reserve_dodges([old, new])
    assert found[0].subject_ids == ("1", "2")
    assert found[0].data["new_reserve"] is None and found[0].data["days_after"] == 2.0


@pytest.mark.parametrize(
    "change",
    [
        {"producer_id": 9},  # another producer
        {"material_code": "rm_sintering_dried"},  # another material
        {"quantity": D("5000")},  # not a similar quantity
        {"created_at": NOW + dt.timedelta(days=30)},  # long after
    ],
)
def test_unrelated_or_late_listings_are_not_reserve_dodges(change):
    closed = NOW - dt.timedelta(days=10)
    old = lot(1, status="unsold", reserve_price=D("-5"), closed_at=closed)
    fields = {"created_at": closed + dt.timedelta(days=2), **change}
    new = lot(2, **fields)
    assert anomalies.reserve_dodges([old, new]) == []


def test_unsold_without_a_reserve_is_no_reserve_dodge():
    closed = NOW - dt.timedelta(days=10)
    old = lot(1, status="unsold", reserve_price=None, closed_at=closed)
    assert anomalies.reserve_dodges([old, lot(2, created_at=closed + dt.timedelta(days=1))]) == []


# --- logins ---


def burst(event_id: int, email: str, at: dt.datetime, ip: str = "10.0.0.1") -> LoginBurstFact:
    return LoginBurstFact(event_id, at, email, 5, 900, ip, 42)


def test_login_bursts_are_grouped_per_address_and_day():
    found = anomalies.login_bursts(
        [
            burst(1, "a@x.cn", NOW),
            burst(2, "a@x.cn", NOW + dt.timedelta(hours=1), "10.0.0.2"),
            burst(3, "b@x.cn", NOW),
        ]
    )
    assert [(f.subject_ids, f.data["bursts"], f.data["failures"]) for f in found] == [
        (("a@x.cn",), 2, 10),
        (("b@x.cn",), 1, 5),
    ]
    assert found[0].data["ips"] == ["10.0.0.1", "10.0.0.2"]


def test_no_burst_events_no_finding():
    assert anomalies.login_bursts([]) == []


def test_distance_between_two_sites():
    a = SiteFact(1, D("0"), D("0"))
    b = SiteFact(2, D("0"), D("1"))
    assert anomalies.distance_km(a, b) == pytest.approx(111.19, abs=0.01)
