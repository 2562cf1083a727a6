"""Demo data for the embedded exchange: refineries, buyers and an administrator.

Names are fictional; places and coordinates are real cities in the red-mud regions. Loading
twice changes nothing: each company is keyed by its USCC and each user by e-mail. Later
contexts extend ``load`` with lots, demands and trades for the same companies.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from exchange.accounts.models import Company, Membership, Site, User
from exchange.accounts.rules import Role, Sector, VerificationStatus
from exchange.accounts.services import hash_password
from exchange.actor import SYSTEM
from exchange.audit.services import record_event
from exchange.db import utcnow
from exchange.listings.models import MonthlyGeneration

DEMO_PASSWORD = "redmud-demo"  # noqa: S105 (published demo login)
ADMIN_EMAIL = "admin@demo.redmud.example"

#: (key, zh name, en name, USCC, producer, buyer, sector, province, city, site, lat, lon)
COMPANIES = [
    (
        "binzhou",
        "滨州示范氧化铝有限公司",
        "Binzhou Demo Alumina Co., Ltd.",
        "91371600MA3C7B2K09",
        True,
        False,
        Sector.ALUMINA,
        "37",
        "滨州市",
        "滨州赤泥堆场",
        "37.383000",
        "117.970000",
    ),
    (
        "lvliang",
        "吕梁示范铝业有限公司",
        "Lüliang Demo Aluminium Co., Ltd.",
        "91141100MA0K4N8T30",
        True,
        False,
        Sector.ALUMINA,
        "14",
        "吕梁市",
        "吕梁赤泥库",
        "37.518000",
        "111.141000",
    ),
    (
        "baise",
        "百色示范氧化铝有限公司",
        "Baise Demo Alumina Co., Ltd.",
        "91451000MA5N2P6H1N",
        True,
        True,
        Sector.ALUMINA,
        "45",
        "百色市",
        "百色干法堆场",
        "23.902000",
        "106.618000",
    ),
    (
        "tangshan",
        "唐山示范钢铁有限公司",
        "Tangshan Demo Steel Co., Ltd.",
        "91130200MA0D8E3F5Q",
        False,
        True,
        Sector.STEEL,
        "13",
        "唐山市",
        "唐山炼铁厂",
        "39.630000",
        "118.180000",
    ),
    (
        "zibo",
        "淄博示范水泥有限公司",
        "Zibo Demo Cement Co., Ltd.",
        "91370300MA3D4G7L2G",
        False,
        True,
        Sector.CEMENT,
        "37",
        "淄博市",
        "淄博熟料线",
        "36.813000",
        "118.055000",
    ),
    (
        "zhengzhou",
        "郑州示范新型墙材有限公司",
        "Zhengzhou Demo Wall Materials Co., Ltd.",
        "91410100MA47R9T6XU",
        False,
        True,
        Sector.BRICKS_CERAMICS,
        "41",
        "郑州市",
        "郑州砖厂",
        "34.747000",
        "113.625000",
    ),
    (
        "taiyuan",
        "太原示范路桥工程有限公司",
        "Taiyuan Demo Road & Bridge Co., Ltd.",
        "91140100MA0L2W5Q8E",
        False,
        True,
        Sector.ROAD,
        "14",
        "太原市",
        "太原路基材料站",
        "37.870000",
        "112.549000",
    ),
]


def _email(key: str, role: str = "owner") -> str:
    return f"{key}.{role}@demo.redmud.example" if role != "owner" else f"{key}@demo.redmud.example"


def logins() -> list[tuple[str, str]]:
    rows = [(ADMIN_EMAIL, "administrator")]
    for c in COMPANIES:
        kinds = "/".join(k for k, on in (("producer", c[4]), ("buyer", c[5])) if on)
        rows.append((_email(c[0]), f"owner, {c[2]} ({kinds})"))
    rows.append((_email("binzhou", "trader"), "trader, Binzhou Demo Alumina"))
    return rows


#: Alumina capacity (t/yr) and red mud per tonne of alumina (FACTS §3: 1.0–1.8) of the demo
#: producers' refineries; monthly generation = capacity / 12 × ratio × a seasonal load factor.
REFINERIES = {
    "binzhou": (2_000_000, Decimal("1.3")),  # Shandong Bayer refinery on imported bauxite
    "lvliang": (1_000_000, Decimal("1.6")),  # Shanxi diasporic bauxite: more residue per tonne
    "baise": (1_000_000, Decimal("1.2")),
}
#: Load by calendar month: lower around the Spring Festival and in the summer maintenance month.
SEASON = (
    "0.97",
    "0.90",
    "1.00",
    "1.02",
    "1.03",
    "1.01",
    "0.96",
    "0.98",
    "1.02",
    "1.03",
    "1.02",
    "1.01",
)


def load_generation(session: Session, today: dt.date | None = None) -> bool:
    """Monthly generation reports of the demo refineries for the last 12 whole months."""
    today = today or utcnow().date()
    first_of_month = today.replace(day=1)
    months = []
    for back in range(12, 0, -1):
        index = first_of_month.year * 12 + first_of_month.month - 1 - back
        months.append(dt.date(index // 12, index % 12 + 1, 1))
    created = False
    for key, (capacity, ratio) in REFINERIES.items():
        uscc = next(c[3] for c in COMPANIES if c[0] == key)
        company = session.scalar(select(Company).where(Company.uscc == uscc))
        if company is None or not company.sites:
            continue
        site = company.sites[0]
        existing = set(
            session.scalars(
                select(MonthlyGeneration.month).where(MonthlyGeneration.site_id == site.id)
            )
        )
        added = []
        for month in months:
            if month in existing:
                continue
            tonnes = (Decimal(capacity) / 12 * ratio * Decimal(SEASON[month.month - 1])).quantize(
                Decimal(1)
            )
            session.add(
                MonthlyGeneration(
                    company_id=company.id, site_id=site.id, month=month, tonnes=tonnes
                )
            )
            added.append(month.isoformat()[:7])
        if added:
            session.flush()
            record_event(
                session,
                SYSTEM,
                "listings:generation:reported",
                "company",
                company.id,
                {"site_id": site.id, "months": added, "source": "demo"},
            )
            created = True
    return created


def load(session: Session) -> bool:
    """Create what is missing; True if anything was created."""
    created = False
    password = hash_password(DEMO_PASSWORD)
    now = utcnow()
    if session.scalar(select(User.id).where(User.email == ADMIN_EMAIL)) is None:
        admin = User(
            email=ADMIN_EMAIL,
            display_name="Exchange administrator",
            password_hash=password,
            is_admin=True,
            email_confirmed_at=now,
        )
        session.add(admin)
        session.flush()
        record_event(
            session,
            SYSTEM,
            "accounts:admin:created",
            "user",
            admin.id,
            {"email": ADMIN_EMAIL, "source": "demo"},
        )
        created = True
    for key, zh, en, uscc, producer, buyer, sector, prov, city, site, lat, lon in COMPANIES:
        if session.scalar(select(Company.id).where(Company.uscc == uscc)) is not None:
            continue
        company = Company(
            legal_name_zh=zh,
            legal_name_en=en,
            uscc=uscc,
            is_producer=producer,
            is_buyer=buyer,
            sector=sector,
            province=prov,
            city=city,
            contact_name=f"{key.title()} Demo",
            contact_phone="+86 400 000 0000",
            contact_email=_email(key),
            verification_status=VerificationStatus.VERIFIED,
            verified_at=now,
            verification_note="demo company",
        )
        company.sites.append(
            Site(name=site, province=prov, city=city, latitude=Decimal(lat), longitude=Decimal(lon))
        )
        session.add(company)
        session.flush()
        members = [(_email(key), Role.OWNER)]
        if key == "binzhou":
            members.append((_email(key, "trader"), Role.TRADER))
        for email, role in members:
            user = User(
                email=email,
                display_name=f"{key.title()} {role.value}",
                password_hash=password,
                email_confirmed_at=now,
                locale="zh_Hans_CN",
            )
            session.add(user)
            session.flush()
            session.add(Membership(user_id=user.id, company_id=company.id, role=role))
        session.flush()
        record_event(
            session,
            SYSTEM,
            "accounts:company:registered",
            "company",
            company.id,
            {"uscc": uscc, "legal_name_zh": zh, "source": "demo"},
        )
        record_event(
            session,
            SYSTEM,
            "accounts:company:verified",
            "company",
            company.id,
            {"status": ["pending", "verified"], "reason": "demo company"},
        )
        created = True
    created = load_listings(session) or created
    # Trading demo data needs lots: keep this after the lots loader.
    created = load_trading_demo(session) or created
    created = load_contracts(session) or created
    created = load_generation(session) or created
    created = load_demands(session) or created
    return created


# --- Demands (the demand context) ----------------------------------------------------------------

#: (company key, title, end use, families, windows [(parameter, min, max)], t, recurrence,
#:  minimum lot, max signed CNY per dry t delivered, modes, visibility)
DemoDemand = tuple[
    str,
    str,
    str,
    tuple[str, ...],
    list[tuple[str, str | None, str | None]],
    str,
    str,
    str,
    str,
    tuple[str, ...],
    str,
]
DEMANDS: list[DemoDemand] = [
    (
        "tangshan",
        "高铁赤泥配矿（烧结）",
        "steel",
        ("red_mud", "rm_product"),
        [("Fe2O3", "45", None), ("Na2O+K2O", None, "1.0")],
        "5000",
        "monthly",
        "1000",
        "120",
        ("road", "rail"),
        "public",
    ),
    (
        "zibo",
        "水泥铁质矫正剂（2 号窑）",
        "cement_iron_corrective",
        ("red_mud",),
        [("Fe2O3", "40", None), ("MgO", None, "3"), ("Na2O+K2O", None, "2"), ("Cl", None, "0.03")],
        "3000",
        "monthly",
        "500",
        "80",
        ("road",),
        "public",
    ),
    (
        "zhengzhou",
        "烧结砖原料",
        "bricks_ceramics",
        ("red_mud",),
        [("Na2O+K2O", None, "4"), ("moisture", None, "35")],
        "20000",
        "one_off",
        "2000",
        "-10",
        ("road",),
        "public",
    ),
    (
        "taiyuan",
        "路基填料（太原绕城段）",
        "road_base",
        ("red_mud",),
        [("leach_pH", None, "12.0"), ("moisture", None, "35")],
        "50000",
        "one_off",
        "5000",
        "-30",
        ("road", "rail"),
        "matched",
    ),
]


def load_demands(session: Session) -> bool:
    """Post the demo buyers' demands once (keyed by buyer and title); True if any was posted."""
    import datetime as dt

    from exchange.actor import Actor
    from exchange.demand.drafts import DemandDraft
    from exchange.demand.models import Demand
    from exchange.demand.rules import SpecWindow
    from exchange.demand.services import create_demand, local_today

    created = False
    today = local_today()
    for key, title, end_use, families, windows, qty, rec, min_lot, price, modes, vis in DEMANDS:
        owner = session.scalar(select(User).where(User.email == _email(key)))
        if owner is None or owner.membership is None:
            continue
        company = owner.membership.company
        if session.scalar(
            select(Demand.id).where(Demand.buyer_id == company.id, Demand.title == title)
        ):
            continue
        draft = DemandDraft(
            title=title,
            end_use=end_use,
            families=families,
            materials=(),
            specs=tuple(
                SpecWindow(p, Decimal(lo) if lo else None, Decimal(hi) if hi else None)
                for p, lo, hi in windows
            ),
            quantity=Decimal(qty),
            recurrence=rec,
            min_lot_size=Decimal(min_lot),
            delivery_site_id=company.sites[0].id,
            window_start=today,
            window_end=today + dt.timedelta(days=365),
            max_price=Decimal(price),
            modes=modes,
            visibility=vis,
        )
        actor = Actor(owner.id, company.id, role=owner.membership.role.value)
        create_demand(session, actor, draft)
        created = True
    return created


#: Demo buyers that bid on open demo auctions: (company key, end use, quantity share).
TRADING_BIDDERS = [
    ("tangshan", "steel", "0.4"),
    ("zibo", "cement_iron_corrective", "0.3"),
    ("zhengzhou", "bricks_ceramics", "0.3"),
]


def load_trading_demo(session: Session) -> bool:
    """A few bids by the demo buyers on the demo producers' open auctions, if there are any.

    Idempotent: each bid carries a fixed idempotency key, so a second run replays instead of
    bidding again. Bids the rules refuse (lot not open, end use gated...) are skipped.
    """
    from exchange.accounts.services import actor_for
    from exchange.errors import DomainError
    from exchange.listings.models import Lot
    from exchange.trading import services
    from exchange.trading.lots import live_bids, terms_of, view
    from exchange.trading.rules import SaleMode, minimum_next_price

    producers = [c[3] for c in COMPANIES if c[4]]
    lots = session.scalars(
        select(Lot)
        .join(Company, Company.id == Lot.producer_id)
        .where(
            Company.uscc.in_(producers),
            Lot.sale_mode == SaleMode.AUCTION,
            Lot.status == "published",
            Lot.closes_at > utcnow(),
        )
        .order_by(Lot.id)
        .limit(5)
    ).all()
    created = False
    for lot in lots:
        for key, end_use, share in TRADING_BIDDERS:
            user = session.scalar(select(User).where(User.email == _email(key)))
            if user is None or user.membership is None:
                continue
            live = [view(b) for b in live_bids(session, lot.id)]
            minimum = minimum_next_price(terms_of(lot), live)
            quantity = max(lot.min_order, (lot.quantity * Decimal(share)).quantize(Decimal(1)))
            try:
                with session.begin_nested():
                    result = services.place_bid(
                        session,
                        actor_for(user, None),
                        lot.id,
                        minimum,
                        min(quantity, lot.quantity),
                        end_use,
                        idempotency_key=f"demo-{lot.id}-{key}",
                    )
            except DomainError:
                continue
            created = created or not result.replayed
    return created


def load_contracts(session: Session) -> bool:
    """One signed contract with a delivery between the Binzhou refinery and the Zibo cement
    plant, drawn from a demo lot; signing it bills its deposit. Does nothing until demo lots
    exist, or once it is there (but bills what an older demo contract is missing)."""
    import datetime as dt

    from exchange.accounts.services import actor_for
    from exchange.contracts import deliveries, signing
    from exchange.contracts.models import Contract
    from exchange.contracts.services import create_contract_from_award
    from exchange.listings.models import Lot
    from exchange.listings.rules import LotStatus
    from exchange.trading.models import Award, AwardStatus

    companies = {
        c.uscc: c
        for c in session.scalars(
            select(Company).where(Company.uscc.in_([COMPANIES[0][3], COMPANIES[4][3]]))
        )
    }
    seller, buyer = companies.get(COMPANIES[0][3]), companies.get(COMPANIES[4][3])
    if seller is None or buyer is None:
        return False
    exists = select(Contract.id).where(
        Contract.seller_id == seller.id, Contract.buyer_id == buyer.id
    )
    existing = session.scalar(exists)
    if existing is not None:
        # A demo contract signed before contracts billed their money gets its invoices now.
        from exchange.contracts import money
        from exchange.contracts.services import lock_contract

        return money.bill_missing(session, SYSTEM, lock_contract(session, existing)) > 0
    lot = session.scalars(
        select(Lot)
        .where(
            Lot.producer_id == seller.id,
            Lot.status == LotStatus.PUBLISHED,
            Lot.remaining >= Lot.min_order,
        )
        .order_by(Lot.id)
        .with_for_update()
    ).first()
    if lot is None or lot.assay is None:
        return False
    quantity = lot.min_order
    lot.remaining -= quantity
    award = Award(
        lot_id=lot.id,
        buyer_id=buyer.id,
        source="buy_now",
        quantity=quantity,
        price=lot.price,
        currency=lot.currency,
        end_use="cement_iron_corrective",
        status=AwardStatus.OPEN,
        sign_by=utcnow() + dt.timedelta(days=7),
    )
    session.add(award)
    session.flush()
    contract = create_contract_from_award(session, SYSTEM, award.id)
    owners = {
        m.company_id: m.user
        for m in session.scalars(
            select(Membership).where(
                Membership.company_id.in_([seller.id, buyer.id]), Membership.role == Role.OWNER
            )
        )
    }
    seller_actor = actor_for(owners[seller.id], None)
    signing.sign_contract(session, seller_actor, contract.id, DEMO_PASSWORD)
    signing.sign_contract(session, actor_for(owners[buyer.id], None), contract.id, DEMO_PASSWORD)
    # About one truckload (34 t net on a 15.2 t tare), less if the whole contract is smaller.
    net = min(Decimal("33.800"), quantity)
    deliveries.record_dispatch(
        session,
        seller_actor,
        contract.id,
        {
            "dispatched_on": utcnow().date(),
            "carrier": "滨州顺达物流有限公司",
            "vehicle_plate": "鲁M·D2027",
            "manifest_no": f"DEMO-{contract.number}-01",
            "gross_t": Decimal("15.200") + net,
            "tare_t": Decimal("15.200"),
        },
    )
    return True


def load_listings(session: Session) -> bool:
    """Demo lots with assays and generation reports for the demo refineries."""
    from exchange.listings.demo import load_lots

    companies = {
        key: session.scalar(select(Company).where(Company.uscc == uscc))
        for key, _zh, _en, uscc, *_rest in COMPANIES
    }
    return load_lots(session, {key: c for key, c in companies.items() if c is not None})
