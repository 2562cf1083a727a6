"""Small builders for test data: one call gives a company with its owner, a user, an admin."""

from __future__ import annotations

import itertools
import re
from decimal import Decimal

from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from exchange.accounts.models import Company, Membership, Site, User
from exchange.accounts.rules import USCC_ALPHABET, Role, Sector, VerificationStatus, uscc_check_char
from exchange.accounts.services import hash_password
from exchange.actor import Actor
from exchange.db import utcnow

PASSWORD = "correct-horse-battery"
_HASH = hash_password(PASSWORD)
_counter = itertools.count(1)


def valid_uscc(n: int | None = None) -> str:
    n = next(_counter) if n is None else n
    body = "91370000MA"
    tail = ""
    while n or len(tail) < 7:
        tail = USCC_ALPHABET[n % 31] + tail
        n //= 31
    first17 = (body + tail[-7:])[:17]
    return first17 + uscc_check_char(first17)


def make_user(
    db: Session, email: str | None = None, *, admin: bool = False, confirmed: bool = True
) -> User:
    user = User(
        email=email or f"user{next(_counter)}@example.test",
        display_name="Test User",
        password_hash=_HASH,
        is_admin=admin,
        email_confirmed_at=utcnow() if confirmed else None,
    )
    db.add(user)
    db.flush()
    return user


def make_company(
    db: Session,
    *,
    verified: bool = True,
    producer: bool = True,
    buyer: bool = True,
    role: Role = Role.OWNER,
    email: str | None = None,
) -> tuple[Company, User]:
    n = next(_counter)
    company = Company(
        legal_name_zh=f"测试公司{n}",
        legal_name_en=f"Test Company {n}",
        uscc=valid_uscc(n),
        is_producer=producer,
        is_buyer=buyer,
        sector=Sector.CEMENT,
        province="37",
        city="淄博市",
        contact_name="Tester",
        contact_phone="123",
        contact_email=f"c{n}@example.test",
        verification_status=VerificationStatus.VERIFIED if verified else VerificationStatus.PENDING,
    )
    company.sites.append(
        Site(
            name="Plant",
            province="37",
            city="淄博市",
            latitude=Decimal("36.8"),
            longitude=Decimal("118.05"),
        )
    )
    db.add(company)
    db.flush()
    user = make_user(db, email)
    db.add(Membership(user_id=user.id, company_id=company.id, role=role))
    db.flush()
    return company, user


def actor_of(user: User, company: Company | None = None, role: Role = Role.OWNER) -> Actor:
    if user.is_admin:
        return Actor(user.id, None, is_admin=True, ip="127.0.0.1")
    return Actor(user.id, company.id if company else None, role=role.value, ip="127.0.0.1")


CSRF = re.compile(r'name="csrf_token" (?:type="hidden" )?value="([^"]+)"')


def csrf_token(client: FlaskClient, url: str = "/login") -> str:
    page = client.get(url).get_data(as_text=True)
    match = CSRF.search(page) or re.search(
        r'id="csrf_token" name="csrf_token" type="hidden" value="([^"]+)"', page
    )
    assert match, f"no CSRF token on {url}"
    return match.group(1)


def login(client: FlaskClient, email: str, password: str = PASSWORD) -> None:
    token = csrf_token(client, "/login")
    response = client.post(
        "/login", data={"email": email, "password": password, "csrf_token": token}
    )
    assert response.status_code == 302, response.get_data(as_text=True)[:2000]


def make_lot(
    db: Session,
    producer: Company | None = None,
    *,
    material_code: str = "rm_bayer_filter_cake",
    quantity: str = "20000",
    min_order: str = "500",
    price: str = "-20.00",
    sale_mode: str = "buy_now",
    status: str = "published",
    assay: dict[str, str] | None = None,
    **fields: object,
):
    """A lot (published buy-now by default) with an optional assay ``{parameter: value}``.

    The grading rows (``lot_end_uses``) are not computed here; the listings services do that.
    """
    import datetime as dt

    from exchange.catalog.materials import MATERIALS
    from exchange.listings.models import Assay, AssayValue, Lot

    if producer is None:
        producer, _owner = make_company(db, producer=True, buyer=False)
    site = producer.sites[0]
    material = MATERIALS[material_code]
    lot = Lot(
        producer_id=producer.id,
        site_id=site.id,
        material_code=material.code,
        material_family=material.family.value,
        province=site.province,
        title_zh=fields.pop("title_zh", "拜耳法赤泥滤饼"),
        title_en=fields.pop("title_en", "Bayer red mud filter cake"),
        quantity=Decimal(quantity),
        remaining=Decimal(fields.pop("remaining", quantity)),
        basis=fields.pop("basis", "dry"),
        moisture_pct=fields.pop("moisture_pct", Decimal("28.0")),
        min_order=Decimal(min_order),
        recurrence=fields.pop("recurrence", "one_off"),
        available_from=fields.pop("available_from", dt.date(2026, 12, 1)),
        sale_mode=sale_mode,
        price=Decimal(price),
        delivery_terms=fields.pop("delivery_terms", "ex_works"),
        status=status,
        published_at=utcnow() if status == "published" else None,
        **fields,
    )
    db.add(lot)
    db.flush()
    if assay:
        record = Assay(
            lot_id=lot.id,
            lab_name="Test Lab",
            accreditation_no="CMA-0001",
            sampled_on=dt.date(2026, 11, 1),
        )
        db.add(record)
        db.flush()
        for parameter, value in assay.items():
            db.add(
                AssayValue(
                    assay_id=record.id, lot_id=lot.id, parameter=parameter, value=Decimal(value)
                )
            )
        db.flush()
    return lot
