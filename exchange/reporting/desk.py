"""The administrators' trade desk: search every lot, bid, award, contract, delivery, invoice and
payment, and open any of them with its audit timeline and the verdict on its hash chain.

Bids and awards are audited on their lot's chain (``lot:<id>``); deliveries, invoices and
payments on their contract's (``contract:<id>``). A record's timeline is the events of that
chain that concern it (all of them for a lot or a contract), and the chain is verified whole.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from flask_babel import lazy_gettext as _l
from sqlalchemy import ColumnElement, func, or_, select
from sqlalchemy.orm import Session, aliased

from exchange.accounts.companies import require_admin
from exchange.accounts.models import Company, User
from exchange.actor import Actor
from exchange.audit.models import AuditEvent
from exchange.audit.services import VerifyReport, verify
from exchange.contracts.models import Contract, Delivery
from exchange.errors import NotFound, ValidationError
from exchange.listings.models import Lot
from exchange.payments.models import Invoice, Payment
from exchange.trading.models import Award, Bid

KINDS = ("lot", "bid", "award", "contract", "delivery", "invoice", "payment")
KIND_LABELS = {
    "lot": _l("Lots"),
    "bid": _l("Bids"),
    "award": _l("Awards"),
    "contract": _l("Contracts"),
    "delivery": _l("Deliveries"),
    "invoice": _l("Invoices"),
    "payment": _l("Payments"),
}
MAX_PER_PAGE = 100
#: Kinds whose amount column is kept in fen.
FEN_KINDS = frozenset({"contract", "delivery", "invoice", "payment"})
HUNDRED = Decimal(100)


@dataclass(frozen=True)
class DeskFilter:
    """What the administrator searches for; every field is optional except the kind.

    Amounts are signed CNY (a disposal fee the producer pays is negative); dates are inclusive
    and compare with the record's own date (listed, placed, awarded, drawn up, dispatched,
    issued, received).
    """

    kind: str = "contract"
    company_id: int | None = None
    province: str | None = None
    material: str | None = None
    status: str | None = None
    since: dt.date | None = None
    until: dt.date | None = None
    min_amount: Decimal | None = None
    max_amount: Decimal | None = None
    #: Companies found by name or credit code (any of them is a party); None = no such filter.
    company_ids: tuple[int, ...] | None = None

    def validated(self) -> DeskFilter:
        errors: dict[str, list[str]] = {}
        if self.kind not in KINDS:
            errors["kind"] = [str(_l("Choose what to search."))]
        elif self.status and self.status not in statuses(self.kind):
            errors["status"] = [str(_l("Choose a status from the list."))]
        if self.since and self.until and self.since > self.until:
            errors["until"] = [str(_l("The end date must not be before the start date."))]
        if (
            self.min_amount is not None
            and self.max_amount is not None
            and self.min_amount > self.max_amount
        ):
            errors["max_amount"] = [str(_l("The maximum must not be below the minimum."))]
        if errors:
            raise ValidationError(_l("Please correct the marked fields."), errors)
        return self


@dataclass(frozen=True)
class DeskRow:
    kind: str
    id: int
    label: str
    status: str
    at: dt.datetime | dt.date | None
    #: Company ids involved (seller/producer first).
    company_ids: tuple[int, ...]
    province: str | None
    material_code: str | None
    quantity_t: Decimal | None
    #: Signed CNY.
    amount_cny: Decimal | None
    #: The chain the record is audited on, and the record's contract / lot for links.
    chain_key: str


@dataclass(frozen=True)
class _Spec:
    """How one kind maps onto the filters: its columns (in the query's FROM clause)."""

    query: Callable[[], Any]
    date: Any
    status: Any
    companies: tuple[Any, ...]
    provinces: tuple[Any, ...]
    material: Any
    #: Signed amount: fen for the kinds in ``FEN_KINDS``, else CNY (quantity × price).
    amount: Any
    order: Any
    row: Callable[[Any], DeskRow]


def _contract_row(c: Contract) -> DeskRow:
    return DeskRow(
        "contract",
        c.id,
        c.number,
        c.status.value,
        c.created_at,
        (c.seller_id, c.buyer_id),
        c.origin_province,
        c.material_code,
        c.quantity,
        Decimal(c.total_fen) / HUNDRED,
        f"contract:{c.id}",
    )


def _specs() -> dict[str, _Spec]:
    # Deliveries and money: the contract is joined for parties, provinces and material.
    inv_contract = aliased(Contract)
    pay_contract = aliased(Contract)
    bid_lot = aliased(Lot)
    award_lot = aliased(Lot)
    return {
        "lot": _Spec(
            lambda: select(Lot),
            Lot.created_at,
            Lot.status,
            (Lot.producer_id,),
            (Lot.province,),
            Lot.material_code,
            Lot.quantity * Lot.price,
            Lot.id,
            lambda lot: DeskRow(
                "lot",
                lot.id,
                lot.title_zh,
                lot.status.value,
                lot.created_at,
                (lot.producer_id,),
                lot.province,
                lot.material_code,
                lot.quantity,
                lot.quantity * lot.price,
                f"lot:{lot.id}",
            ),
        ),
        "bid": _Spec(
            lambda: select(Bid, bid_lot).join(bid_lot, bid_lot.id == Bid.lot_id),
            Bid.placed_at,
            Bid.status,
            (Bid.company_id, bid_lot.producer_id),
            (bid_lot.province,),
            bid_lot.material_code,
            Bid.quantity * Bid.price,
            Bid.id,
            lambda r: DeskRow(
                "bid",
                r[0].id,
                r[1].title_zh,
                r[0].status.value,
                r[0].placed_at,
                (r[1].producer_id, r[0].company_id),
                r[1].province,
                r[1].material_code,
                r[0].quantity,
                r[0].quantity * r[0].price,
                f"lot:{r[1].id}",
            ),
        ),
        "award": _Spec(
            lambda: select(Award, award_lot).join(award_lot, award_lot.id == Award.lot_id),
            Award.created_at,
            Award.status,
            (Award.buyer_id, award_lot.producer_id),
            (award_lot.province,),
            award_lot.material_code,
            Award.quantity * Award.price,
            Award.id,
            lambda r: DeskRow(
                "award",
                r[0].id,
                r[1].title_zh,
                r[0].status.value,
                r[0].created_at,
                (r[1].producer_id, r[0].buyer_id),
                r[1].province,
                r[1].material_code,
                r[0].quantity,
                r[0].quantity * r[0].price,
                f"lot:{r[1].id}",
            ),
        ),
        "contract": _Spec(
            lambda: select(Contract),
            Contract.created_at,
            Contract.status,
            (Contract.seller_id, Contract.buyer_id),
            (Contract.origin_province, Contract.destination_province),
            Contract.material_code,
            Contract.total_fen,
            Contract.id,
            _contract_row,
        ),
        "delivery": _Spec(
            lambda: select(Delivery, Contract).join(Contract, Contract.id == Delivery.contract_id),
            Delivery.dispatched_on,
            Delivery.status,
            (Contract.seller_id, Contract.buyer_id),
            (Contract.origin_province, Contract.destination_province),
            Contract.material_code,
            Delivery.value_fen,
            Delivery.id,
            lambda r: DeskRow(
                "delivery",
                r[0].id,
                f"{r[1].number} · {r[0].manifest_no}",
                r[0].status.value,
                r[0].dispatched_on,
                (r[1].seller_id, r[1].buyer_id),
                r[1].origin_province,
                r[1].material_code,
                r[0].received_net_t if r[0].received_net_t is not None else r[0].net_t,
                Decimal(r[0].value_fen) / HUNDRED if r[0].value_fen is not None else None,
                f"contract:{r[1].id}",
            ),
        ),
        "invoice": _Spec(
            lambda: select(Invoice, inv_contract).join(
                inv_contract, inv_contract.id == Invoice.contract_id
            ),
            Invoice.issued_at,
            Invoice.status,
            (Invoice.payer_id, Invoice.payee_id),
            (inv_contract.origin_province, inv_contract.destination_province),
            inv_contract.material_code,
            Invoice.amount_fen,
            Invoice.id,
            lambda r: DeskRow(
                "invoice",
                r[0].id,
                f"{r[0].reference} · {r[1].number}",
                r[0].status.value,
                r[0].issued_at,
                tuple(c for c in (r[0].payee_id, r[0].payer_id) if c is not None),
                r[1].origin_province,
                r[1].material_code,
                None,
                Decimal(r[0].amount_fen) / HUNDRED,
                f"contract:{r[1].id}",
            ),
        ),
        "payment": _Spec(
            lambda: (
                select(Payment, Invoice, pay_contract)
                .join(Invoice, Invoice.id == Payment.invoice_id)
                .join(pay_contract, pay_contract.id == Invoice.contract_id)
            ),
            Payment.received_at,
            Payment.gateway,
            (Invoice.payer_id, Invoice.payee_id),
            (pay_contract.origin_province, pay_contract.destination_province),
            pay_contract.material_code,
            Payment.amount_fen,
            Payment.id,
            lambda r: DeskRow(
                "payment",
                r[0].id,
                f"{r[1].reference} · {r[0].external_ref}",
                r[0].gateway,
                r[0].received_at,
                tuple(c for c in (r[1].payee_id, r[1].payer_id) if c is not None),
                r[2].origin_province,
                r[2].material_code,
                None,
                Decimal(r[0].amount_fen) / HUNDRED,
                f"contract:{r[2].id}",
            ),
        ),
    }


def _day_start(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)


def _next_day(day: dt.date) -> dt.date | None:
    """The day after ``day``; None after the last representable day (no upper bound then)."""
    try:
        return day + dt.timedelta(days=1)
    except OverflowError:
        return None


def _where(spec: _Spec, f: DeskFilter) -> list[ColumnElement[bool]]:
    where: list[ColumnElement[bool]] = []
    if f.company_id is not None:
        where.append(or_(*(c == f.company_id for c in spec.companies)))
    if f.company_ids is not None:
        where.append(or_(*(c.in_(f.company_ids) for c in spec.companies)))
    if f.province:
        where.append(or_(*(p == f.province for p in spec.provinces)))
    if f.material:
        where.append(spec.material == f.material)
    if f.status:
        where.append(spec.status == f.status)
    is_date = f.kind == "delivery"
    if f.since is not None:
        where.append(spec.date >= (f.since if is_date else _day_start(f.since)))
    if f.until is not None:
        if is_date:
            where.append(spec.date <= f.until)
        elif (after := _next_day(f.until)) is not None:
            where.append(spec.date < _day_start(after))
    scale = HUNDRED if f.kind in FEN_KINDS else Decimal(1)
    if f.min_amount is not None:
        where.append(spec.amount >= f.min_amount * scale)
    if f.max_amount is not None:
        where.append(spec.amount <= f.max_amount * scale)
    return where


@dataclass(frozen=True)
class DeskPage:
    rows: list[DeskRow]
    total: int
    page: int
    per_page: int
    #: Matches per kind under the same filters (the tabs' counts).
    counts: dict[str, int] = field(default_factory=dict)
    companies: dict[int, Company] = field(default_factory=dict)

    @property
    def pages(self) -> int:
        return max((self.total + self.per_page - 1) // self.per_page, 1)


def count(session: Session, f: DeskFilter) -> int:
    spec = _specs()[f.kind]
    query = spec.query().where(*_where(spec, f)).order_by(None)
    return session.scalar(select(func.count()).select_from(query.subquery())) or 0


def search(
    session: Session,
    actor: Actor,
    f: DeskFilter,
    *,
    page: int = 1,
    per_page: int = 25,
    with_counts: bool = False,
) -> DeskPage:
    """One page of ``f.kind`` records matching ``f``, newest first (administrators only).

    Raises Forbidden for others, ValidationError for contradictory filters.
    """
    require_admin(actor)
    f = f.validated()
    page, per_page = max(page, 1), min(max(per_page, 1), MAX_PER_PAGE)
    spec = _specs()[f.kind]
    query = spec.query().where(*_where(spec, f))
    total = count(session, f)
    result = session.execute(
        query.order_by(spec.order.desc()).limit(per_page).offset((page - 1) * per_page)
    )
    raw = result.scalars().all() if f.kind in ("lot", "contract") else result.all()
    rows = [spec.row(r) for r in raw]
    counts = (
        {k: (total if k == f.kind else count(session, _with_kind(f, k))) for k in KINDS}
        if with_counts
        else {}
    )
    return DeskPage(rows, total, page, per_page, counts, companies_of(session, rows))


def _with_kind(f: DeskFilter, kind: str) -> DeskFilter:
    # A status belongs to one kind; the other tabs count without it.
    return DeskFilter(
        kind,
        f.company_id,
        f.province,
        f.material,
        None,
        f.since,
        f.until,
        f.min_amount,
        f.max_amount,
        f.company_ids,
    )


#: At most this many companies match a name search.
MAX_COMPANY_MATCHES = 50


def find_companies(session: Session, text: str) -> tuple[int, ...]:
    """Companies whose id, unified social credit code or name (Chinese or English, part of
    it) is ``text``."""
    text = text.strip()
    if text.isdigit() and len(text) < 10:
        return (int(text),)
    return tuple(
        session.scalars(
            select(Company.id)
            .where(
                (Company.uscc == text.upper())
                | Company.legal_name_zh.contains(text, autoescape=True)
                | Company.legal_name_en.icontains(text, autoescape=True)
            )
            .order_by(Company.id)
            .limit(MAX_COMPANY_MATCHES)
        )
    )


def companies_of(session: Session, rows: list[DeskRow]) -> dict[int, Company]:
    ids = sorted({c for r in rows for c in r.company_ids})
    if not ids:
        return {}
    return {c.id: c for c in session.scalars(select(Company).where(Company.id.in_(ids)))}


# --- one record and its timeline ---


@dataclass(frozen=True)
class TimelineEvent:
    event: AuditEvent
    user: str | None
    company: str | None
    #: Changed fields ``{field: (old, new)}`` and the other recorded fields.
    changes: dict[str, tuple[Any, Any]]
    fields: dict[str, Any]


@dataclass(frozen=True)
class Record:
    row: DeskRow
    events: list[TimelineEvent]
    #: Events in the whole chain (the timeline shows those that concern the record).
    chain_events: int
    chain: VerifyReport
    companies: dict[int, Company]


def _concerns(kind: str, record_id: int, invoice_id: int | None) -> Callable[[AuditEvent], bool]:
    def data(e: AuditEvent) -> dict[str, Any]:
        try:
            loaded = json.loads(e.data)
        except ValueError:
            return {}
        return loaded if isinstance(loaded, dict) else {}

    def mentions(d: Mapping[str, Any], key: str) -> bool:
        value = d.get(key)
        if value == record_id or value == str(record_id):
            return True
        return isinstance(value, list) and (record_id in value or str(record_id) in value)

    if kind in ("lot", "contract"):
        return lambda e: True
    if kind == "bid":
        return lambda e: mentions(data(e), "bid_id") or mentions(data(e), "bid_ids")
    if kind == "award":
        return lambda e: mentions(data(e), "award_id") or mentions(data(e), "award_ids")
    if kind == "delivery":

        def delivery(e: AuditEvent) -> bool:
            d = data(e)
            nested = d.get("delivery")
            return mentions(d, "delivery_id") or (
                isinstance(nested, dict) and nested.get("id") == record_id
            )

        return delivery
    target = str(invoice_id)
    return lambda e: e.entity_type == "invoice" and e.entity_id == target


def _split(raw: str) -> tuple[dict[str, tuple[Any, Any]], dict[str, Any]]:
    """An event's data as changed fields (``[old, new]`` pairs, the audit's diff form) and the
    rest."""
    try:
        data = json.loads(raw)
    except ValueError:
        return {}, {"data": raw}
    if not isinstance(data, dict):
        return {}, {"data": data}
    changes = {
        k: (v[0], v[1])
        for k, v in data.items()
        if isinstance(v, list) and len(v) == 2 and not isinstance(v[0], dict | list)
    }
    return changes, {k: v for k, v in data.items() if k not in changes}


def record(session: Session, actor: Actor, kind: str, record_id: int) -> Record:
    """One record, its audit timeline (who, when, from where, what changed) and the verdict on
    its chain. Raises Forbidden for non-administrators, NotFound for an unknown record."""
    require_admin(actor)
    if kind not in KINDS:
        raise NotFound(_l("No such record."))
    spec = _specs()[kind]
    result = session.execute(spec.query().where(spec.order == record_id))
    found = result.scalars().first() if kind in ("lot", "contract") else result.first()
    if found is None:
        raise NotFound(_l("No such record."))
    row = spec.row(found)
    invoice_id = (
        record_id if kind == "invoice" else (found[0].invoice_id if kind == "payment" else None)  # type: ignore[index]
    )
    concerns = _concerns(kind, record_id, invoice_id)
    chain = list(
        session.scalars(
            select(AuditEvent)
            .where(AuditEvent.chain_key == row.chain_key)
            .order_by(AuditEvent.chain_seq)
        )
    )
    mine = [e for e in chain if concerns(e)]
    users = _names(session, User, User.display_name, {e.actor_user_id for e in mine})
    companies = companies_of(session, [row])
    extra = {e.actor_company_id for e in mine} - set(companies) - {None}
    if extra:
        companies.update(
            {c.id: c for c in session.scalars(select(Company).where(Company.id.in_(extra)))}
        )
    events = []
    for e in mine:
        changes, fields = _split(e.data)
        company = companies.get(e.actor_company_id) if e.actor_company_id else None
        events.append(
            TimelineEvent(
                e,
                users.get(e.actor_user_id) if e.actor_user_id else None,
                company.legal_name_zh if company else None,
                changes,
                fields,
            )
        )
    return Record(row, events, len(chain), verify(session, row.chain_key), companies)


def _names(session: Session, model: Any, column: Any, ids: set[int | None]) -> dict[int, str]:
    wanted = sorted(i for i in ids if i is not None)
    if not wanted:
        return {}
    return dict(session.execute(select(model.id, column).where(model.id.in_(wanted))).all())


def statuses(kind: str) -> list[str]:
    """The status values a kind's records take (the status filter's choices)."""
    from exchange.contracts.models import DeliveryStatus
    from exchange.contracts.rules import ContractStatus
    from exchange.listings.rules import LotStatus
    from exchange.payments.models import InvoiceStatus
    from exchange.trading.models import AwardStatus
    from exchange.trading.rules import BidStatus

    enums: dict[str, Any] = {
        "lot": LotStatus,
        "bid": BidStatus,
        "award": AwardStatus,
        "contract": ContractStatus,
        "delivery": DeliveryStatus,
        "invoice": InvoiceStatus,
    }
    if kind == "payment":
        return ["bank", "stripe"]
    return [m.value for m in enums[kind]]
