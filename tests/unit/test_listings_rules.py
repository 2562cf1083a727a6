"""Listings rules: who may move a lot, quantity reduction, price words, distance, file checks."""

from __future__ import annotations

from decimal import Decimal

import pytest

from exchange.errors import InvalidTransition
from exchange.files import safe_filename, sniff_content_type
from exchange.listings.rules import (
    Basis,
    LotEvent,
    LotStatus,
    PriceKind,
    QuantityProblem,
    SaleMode,
    apply,
    chord_km,
    dry_tonnes,
    frozen_fields,
    great_circle_km,
    price_kind,
    producer_actions,
    remaining_after_reduction,
    unit_vector,
)

D = Decimal


@pytest.mark.parametrize(
    ("status", "actions"),
    [
        (LotStatus.DRAFT, [LotEvent.SUBMITTED, LotEvent.WITHDRAWN]),
        (LotStatus.PENDING_REVIEW, [LotEvent.WITHDRAWN]),
        (LotStatus.PUBLISHED, [LotEvent.WITHDRAWN]),
        (LotStatus.CLOSED, []),
        (LotStatus.AWARDED, []),
        (LotStatus.WITHDRAWN, []),
    ],
)
def test_the_dashboard_offers_only_what_the_table_allows_a_producer(status, actions):
    assert producer_actions(status) == actions


def test_a_published_lot_cannot_be_submitted_again():
    with pytest.raises(InvalidTransition):
        apply(LotStatus.PUBLISHED, LotEvent.SUBMITTED)


def test_auction_start_price_is_frozen_once_published_but_a_buy_now_price_is_not():
    assert "price" in frozen_fields(SaleMode.AUCTION)
    assert "price" in frozen_fields(SaleMode.TENDER)
    assert "price" not in frozen_fields(SaleMode.BUY_NOW)
    assert {"sale_mode", "closes_at", "reserve_price", "site_id"} <= frozen_fields("buy_now")


def test_quantity_can_shrink_by_the_unsold_part_only():
    # 1,000 t listed, 300 t sold: 700 t remain.
    assert remaining_after_reduction(D(1000), D(700), D(1000)) == D(700)
    assert remaining_after_reduction(D(1000), D(700), D("300.001")) == D("0.001")
    assert remaining_after_reduction(D(1000), D(700), D(300)) is QuantityProblem.BELOW_SOLD
    assert remaining_after_reduction(D(1000), D(700), D(200)) is QuantityProblem.BELOW_SOLD
    assert remaining_after_reduction(D(1000), D(700), D("1000.001")) is QuantityProblem.INCREASE


def test_dry_tonnes_from_wet_tonnes_need_the_moisture():
    assert dry_tonnes(D(1000), Basis.WET, D(28)) == D(720)
    assert dry_tonnes(D(1000), Basis.WET, None) is None
    assert dry_tonnes(D(1000), "dry", None) == D(1000)


@pytest.mark.parametrize(
    ("price", "kind"),
    [("-0.01", PriceKind.DISPOSAL_FEE), ("0", PriceKind.FREE), ("0.01", PriceKind.PRICE)],
)
def test_a_negative_price_reads_as_a_disposal_fee(price, kind):
    assert price_kind(D(price)) is kind


def test_great_circle_distances_match_known_city_pairs():
    # Beijing–Shanghai is about 1,068 km; Binzhou–Zibo about 64 km.
    assert great_circle_km(39.9042, 116.4074, 31.2304, 121.4737) == pytest.approx(1068, abs=5)
    assert great_circle_km(37.383, 117.97, 36.813, 118.055) == pytest.approx(64, abs=1)
    assert great_circle_km(23.9, 106.6, 23.9, 106.6) == 0


def test_the_squared_chord_orders_points_like_the_great_circle_distance():
    origin = unit_vector(36.8, 118.05)
    cities = [(37.38, 117.97), (37.52, 111.14), (23.9, 106.62), (39.63, 118.18), (34.75, 113.63)]

    def chord2(point):
        return sum((a - b) ** 2 for a, b in zip(unit_vector(*point), origin, strict=True))

    by_chord = sorted(cities, key=chord2)
    by_arc = sorted(cities, key=lambda c: great_circle_km(36.8, 118.05, *c))
    assert by_chord == by_arc
    assert chord_km(chord2(cities[2])) == pytest.approx(great_circle_km(36.8, 118.05, *cities[2]))


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        (b"%PDF-1.7\n", "application/pdf"),
        (b"\x89PNG\r\n\x1a\n\x00", "image/png"),
        (b"\xff\xd8\xff\xe0\x00\x10JFIF", "image/jpeg"),
        (b"MZ\x90\x00\x03", None),  # a Windows executable, whatever its name
        (b"\x7fELF\x02\x01", None),
        (b"<!doctype html><script>", None),
        (b"<svg xmlns=", None),
        (b"PK\x03\x04", None),
        (b"", None),
        (b" %PDF-", None),  # the magic must come first
    ],
)
def test_file_type_is_decided_by_content(head, expected):
    assert sniff_content_type(head) == expected


@pytest.mark.parametrize(
    ("name", "content_type", "expected"),
    [
        ("../../etc/passwd", "application/pdf", "passwd.pdf"),
        ("..\\..\\windows\\system.ini", "application/pdf", "system.ini.pdf"),
        ("C:\\Users\\x\\报告.PDF", "application/pdf", "报告.pdf"),
        ("photo.jpeg", "image/jpeg", "photo.jpg"),
        ("setup.exe", "application/pdf", "setup.exe.pdf"),
        ("<b>alert(1)</b>.png", "image/png", "b.png"),
        ("<img src=x onerror=alert(1)>.png", "image/png", "img src_x onerror_alert(1).png"),
        ("\x00\x1f.pdf", "application/pdf", "certificate.pdf"),
        ("", "image/png", "certificate.png"),
        (None, "image/png", "certificate.png"),
        (".htaccess", "application/pdf", "htaccess.pdf"),
    ],
)
def test_upload_names_lose_paths_and_take_the_real_extension(name, content_type, expected):
    assert safe_filename(name, content_type, fallback="certificate") == expected


def test_upload_names_are_capped():
    name = safe_filename("a" * 500 + ".pdf", "application/pdf")
    assert len(name) == 104 and name.endswith(".pdf")
