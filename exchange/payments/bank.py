"""Bank transfers: an administrator reconciles what arrived on the exchange's account.

A transfer is entered by hand or imported from a bank statement (CSV with the columns
date, amount, reference, payer). Each is stored once — the same statement line imported twice
is recognised by its fingerprint and its place among identical lines — and matched to an
invoice by the reference in its memo (check symbol verified). A match posts the payment once;
partial payments and overpayments are shown as such; lines that match nothing wait, listed,
until an administrator matches them.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
from collections import Counter
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from exchange.accounts.companies import require_admin
from exchange.actor import Actor
from exchange.audit.services import record_event
from exchange.db import utcnow
from exchange.errors import Conflict, DomainError, ValidationError
from exchange.payments import rules
from exchange.payments.models import BankTransfer, BankTransferStatus, Gateway, Invoice, Payment
from exchange.payments.receipts import record_payment
from exchange.payments.settings import current as settings

MAX_STATEMENT_ROWS = 5000


@dataclass
class Reconciliation:
    """The outcome of one transfer, for the results table."""

    outcome: str  #: matched | unmatched | duplicate
    received_on: dt.date
    amount_fen: int
    reference_text: str
    payer_name: str
    message: str
    transfer: BankTransfer | None = None
    invoice: Invoice | None = None
    applied_fen: int = 0
    excess_fen: int = 0
    open_after_fen: int = 0


def fingerprint(
    received_on: dt.date, amount_fen: int, currency: str, reference_text: str, payer_name: str
) -> str:
    """The identity of a statement line (whitespace and case in the memo do not matter)."""
    memo = " ".join(reference_text.upper().split())
    payer = " ".join(payer_name.split())
    raw = f"{received_on.isoformat()}|{amount_fen}|{currency.upper()}|{memo}|{payer}"
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()


def record_transfer(
    session: Session,
    actor: Actor,
    *,
    received_on: dt.date,
    amount_fen: int,
    reference_text: str,
    payer_name: str,
    currency: str = "CNY",
    source: str = "form",
    occurrence: int | None = None,
    separate: bool = False,
) -> Reconciliation:
    """Store one incoming transfer and match it to an invoice if its memo names one.

    ``occurrence`` is the line's place among identical lines of one statement (CSV import).
    By hand (None), an identical transfer already recorded is refused as a duplicate unless
    ``separate`` says it is another transfer. Administrators only (Forbidden otherwise).
    """
    require_admin(actor)
    if amount_fen <= 0:
        raise ValueError("an incoming transfer is positive")
    result = Reconciliation(
        outcome="duplicate",
        received_on=received_on,
        amount_fen=amount_fen,
        reference_text=reference_text,
        payer_name=payer_name,
        message="",
    )
    fp = fingerprint(received_on, amount_fen, currency, reference_text, payer_name)
    seen = session.scalar(select(func.count()).where(BankTransfer.fingerprint == fp)) or 0
    if occurrence is None:
        if seen and not separate:
            result.message = str(
                _l(
                    "A transfer with the same date, amount, memo and payer is already "
                    "recorded. If this is another transfer, tick “This is a separate transfer”."
                )
            )
            return result
        occurrence = seen + 1
    transfer = BankTransfer(
        received_on=received_on,
        amount_fen=amount_fen,
        currency=currency.upper(),
        reference_text=reference_text.strip()[:200],
        payer_name=payer_name.strip()[:200],
        fingerprint=fp,
        occurrence=occurrence,
        status=BankTransferStatus.UNMATCHED,
        source=source,
        created_at=utcnow(),
        created_by_id=actor.user_id,
    )
    nested = session.begin_nested()
    try:
        session.add(transfer)
        session.flush()
    except IntegrityError:
        nested.rollback()
        result.message = str(_l("This statement line was already reconciled."))
        return result
    nested.commit()
    result.transfer = transfer
    reference = rules.parse_reference(reference_text)
    invoice = (
        session.scalar(select(Invoice).where(Invoice.reference == reference)) if reference else None
    )
    if invoice is None or invoice.kind is rules.InvoiceKind.REFUND:
        return _unmatched(session, actor, transfer, result, reference_text, reference)
    return _match(session, actor, transfer, invoice, result)


def _unmatched(
    session: Session,
    actor: Actor,
    transfer: BankTransfer,
    result: Reconciliation,
    reference_text: str,
    reference: str | None,
) -> Reconciliation:
    if reference is not None:
        note = _l("The reference %(ref)s belongs to no invoice.", ref=reference)
    elif rules.looks_like_reference(reference_text):
        note = _l("The reference in the memo is mistyped (its check character is wrong).")
    else:
        note = _l("The memo contains no invoice reference.")
    transfer.note = str(note)[:300]
    result.outcome, result.message = "unmatched", str(note)
    record_event(
        session,
        actor,
        "payments:bank_transfer:unmatched",
        "bank_transfer",
        transfer.id,
        {"amount_fen": transfer.amount_fen, "memo": transfer.reference_text, "note": str(note)},
    )
    return result


def _match(
    session: Session,
    actor: Actor,
    transfer: BankTransfer,
    invoice: Invoice,
    result: Reconciliation,
) -> Reconciliation:
    received_at = dt.datetime.combine(
        transfer.received_on, dt.time(12, 0), tzinfo=ZoneInfo(settings().timezone)
    ).astimezone(dt.UTC)
    nested = session.begin_nested()
    try:
        payment = record_payment(
            session,
            actor,
            invoice.id,
            gateway=Gateway.BANK,
            external_ref=f"transfer:{transfer.id}",
            amount_fen=transfer.amount_fen,
            currency=transfer.currency,
            received_at=received_at,
            bank_transfer_id=transfer.id,
        )
    except DomainError as exc:
        nested.rollback()
        transfer.note = str(exc.message)[:300]
        result.outcome, result.message, result.invoice = "unmatched", str(exc.message), invoice
        return result
    nested.commit()
    assert payment is not None  # a new transfer id is new money
    transfer.status = BankTransferStatus.MATCHED
    transfer.invoice_id = invoice.id
    transfer.matched_at = utcnow()
    session.refresh(invoice)
    result.outcome, result.transfer, result.invoice = "matched", transfer, invoice
    result.applied_fen, result.excess_fen = payment.applied_fen, payment.excess_fen
    result.open_after_fen = invoice.open_fen
    if payment.excess_fen:
        result.message = str(
            _l("Overpaid: the excess is owed back to the payer and can be refunded.")
        )
    elif invoice.open_fen:
        result.message = str(_l("Partly paid: the rest is still open."))
    else:
        result.message = str(_l("Paid in full."))
    transfer.note = result.message[:300]
    return result


def match_transfer(
    session: Session, actor: Actor, transfer_id: int, reference_text: str
) -> Reconciliation:
    """Match a waiting (unmatched) transfer to the invoice an administrator names."""
    require_admin(actor)
    transfer = session.scalar(
        select(BankTransfer)
        .where(BankTransfer.id == transfer_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if transfer is None:
        raise ValidationError(_l("No such transfer."))
    if transfer.status is not BankTransferStatus.UNMATCHED:
        raise Conflict(_l("This transfer is already matched."))
    reference = rules.parse_reference(reference_text)
    invoice = (
        session.scalar(select(Invoice).where(Invoice.reference == reference)) if reference else None
    )
    if invoice is None or invoice.kind is rules.InvoiceKind.REFUND:
        message = str(_l("Enter the reference of an invoice, e.g. RMX-INV-7K3M-9Q2D-X."))
        raise ValidationError(message, {"reference": [message]})
    result = Reconciliation(
        outcome="unmatched",
        received_on=transfer.received_on,
        amount_fen=transfer.amount_fen,
        reference_text=transfer.reference_text,
        payer_name=transfer.payer_name,
        message="",
        transfer=transfer,
    )
    result = _match(session, actor, transfer, invoice, result)
    if result.outcome != "matched":
        raise ValidationError(result.message, {"reference": [result.message]})
    return result


# --- statements ---------------------------------------------------------------------------------

COLUMNS = ("date", "amount", "reference", "payer")


@dataclass(frozen=True)
class StatementLine:
    line_no: int
    received_on: dt.date
    amount_fen: int
    reference_text: str
    payer_name: str


def _date(text: str) -> dt.date:
    cleaned = text.strip().replace("/", "-").replace(".", "-")
    return dt.date.fromisoformat(cleaned)


def parse_statement(text: str) -> tuple[list[StatementLine], list[int]]:
    """The incoming lines of a CSV statement and the line numbers of outgoing ones (negative
    amounts, skipped). Raises ValidationError naming every malformed line; nothing is stored."""
    problems: list[str] = []
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    header = [(h or "").strip().lower() for h in (reader.fieldnames or [])]
    missing = [c for c in COLUMNS if c not in header]
    if missing:
        message = str(
            _l(
                "The file needs the columns date, amount, reference, payer; missing: %(cols)s.",
                cols=", ".join(missing),
            )
        )
        raise ValidationError(message, {"statement": [message]})
    reader.fieldnames = header
    lines, outgoing = [], []
    for number, row in enumerate(reader, start=2):
        if number - 1 > MAX_STATEMENT_ROWS:
            problems.append(str(_l("More than %(n)s lines; split the file.", n=MAX_STATEMENT_ROWS)))
            break
        if not any((v or "").strip() for v in row.values() if isinstance(v, str)):
            continue
        try:
            received_on = _date(row.get("date") or "")
        except ValueError:
            problems.append(str(_l("Line %(n)s: the date is not YYYY-MM-DD.", n=number)))
            continue
        raw_amount = (row.get("amount") or "").strip()
        if raw_amount.startswith("-"):
            outgoing.append(number)
            continue
        try:
            amount_fen = rules.parse_amount_fen(raw_amount)
        except ValueError:
            problems.append(str(_l("Line %(n)s: the amount is not a yuan amount.", n=number)))
            continue
        lines.append(
            StatementLine(
                number,
                received_on,
                amount_fen,
                (row.get("reference") or "").strip(),
                (row.get("payer") or "").strip(),
            )
        )
    if problems:
        message = " ".join(problems[:20])
        raise ValidationError(message, {"statement": problems[:20]})
    return lines, outgoing


def import_statement(
    session: Session, actor: Actor, text: str, *, currency: str = "CNY"
) -> tuple[list[Reconciliation], list[int]]:
    """Reconcile every incoming line of a statement; returns the results and the outgoing
    line numbers skipped. Importing the same statement again reconciles nothing twice."""
    require_admin(actor)
    lines, outgoing = parse_statement(text)
    seen: Counter[str] = Counter()
    results = []
    for line in lines:
        fp = fingerprint(
            line.received_on, line.amount_fen, currency, line.reference_text, line.payer_name
        )
        seen[fp] += 1
        results.append(
            record_transfer(
                session,
                actor,
                received_on=line.received_on,
                amount_fen=line.amount_fen,
                reference_text=line.reference_text,
                payer_name=line.payer_name,
                currency=currency,
                source="csv",
                occurrence=seen[fp],
            )
        )
    return results, outgoing


def unmatched_transfers(session: Session) -> list[BankTransfer]:
    return list(
        session.scalars(
            select(BankTransfer)
            .where(BankTransfer.status == BankTransferStatus.UNMATCHED)
            .order_by(BankTransfer.received_on, BankTransfer.id)
        )
    )


def recent_transfers(session: Session, limit: int = 30) -> list[BankTransfer]:
    return list(session.scalars(select(BankTransfer).order_by(BankTransfer.id.desc()).limit(limit)))


def payments_for(session: Session, invoice_id: int) -> list[Payment]:
    return list(
        session.scalars(
            select(Payment).where(Payment.invoice_id == invoice_id).order_by(Payment.id)
        )
    )
