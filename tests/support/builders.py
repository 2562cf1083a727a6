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
