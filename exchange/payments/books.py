"""A contract's books: the locks every money event takes, and the contract's position.

Every service that moves money on a contract first locks the contract's own row (the lock the
contracts context takes for every contract event), then the contract's book row, then the
invoice row. That order never changes, so a payment racing a delivery never deadlocks; the
contract lock serialises the contract's audit chain (``contract:<id>``) and deposit netting.

When a money event leaves a contract's balance at zero, ``notify_settled`` calls the listeners
registered with ``on_settled`` (the contracts context completes the contract then), in the
same transaction.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from flask_babel import lazy_gettext as _l
from sqlalchemy import column, func, select, table
from sqlalchemy.orm import Session

from exchange.actor import Actor
from exchange.audit.services import record_event
from exchange.errors import Conflict, NotFound
from exchange.payments.ledger import insert_ignoring_duplicates
from exchange.payments.models import AccountKind, ContractBook, Invoice, LedgerAccount, Posting
from exchange.payments.rules import InvoiceKind

#: The contracts table as far as payments needs it: the row to lock first.
_CONTRACTS = table("contracts", column("id"))


def lock_contract_row(session: Session, contract_id: int) -> None:
    """Lock the contract's row (first in the lock order). NotFound if there is no contract."""
    found = session.execute(
        select(_CONTRACTS.c.id).where(_CONTRACTS.c.id == contract_id).with_for_update()
    ).first()
    if found is None:
        raise NotFound(_l("No such contract."))


def lock_book(session: Session, contract_id: int, currency: str | None = None) -> ContractBook:
    """The contract's book, created on first use, locked for this transaction after the
    contract's own row.

    Raises NotFound for an unknown contract; Conflict when ``currency`` differs from the
    contract's (one currency per contract).
    """
    lock_contract_row(session, contract_id)
    if currency is not None:
        insert_ignoring_duplicates(
            session, ContractBook.__table__, {"contract_id": contract_id, "currency": currency}
        )
    book = session.scalar(
        select(ContractBook)
        .where(ContractBook.contract_id == contract_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if book is None:
        raise NotFound(_l("This contract has no payments yet."))
    if currency is not None and book.currency != currency:
        raise Conflict(_l("A contract is paid in one currency only."))
    return book


def lock_invoice(session: Session, invoice_id: int) -> Invoice:
    """The invoice, locked after its contract's book (the one lock order). NotFound if absent."""
    contract_id = session.scalar(select(Invoice.contract_id).where(Invoice.id == invoice_id))
    if contract_id is None:
        raise NotFound(_l("No such invoice."))
    lock_book(session, contract_id)
    invoice = session.scalar(
        select(Invoice)
        .where(Invoice.id == invoice_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    assert invoice is not None
    return invoice


def record_money_event(
    session: Session,
    actor: Actor,
    action: str,
    invoice: Invoice,
    data: dict[str, object] | None = None,
) -> None:
    """An audit event on the contract's chain; the caller holds the contract's book lock."""
    record_event(
        session,
        actor,
        action,
        "invoice",
        invoice.id,
        {
            "reference": invoice.reference,
            "kind": invoice.kind.value,
            "status": invoice.status.value,
            "currency": invoice.currency,
            **(data or {}),
        },
        chain=f"contract:{invoice.contract_id}",
    )


@dataclass(frozen=True)
class ContractPosition:
    """Where a contract's money stands, from the ledger (fen, each part ≥ 0 when consistent)."""

    contract_id: int
    currency: str | None
    #: Payers still owe this on issued invoices.
    outstanding_fen: int
    #: Deposits received and neither netted against deliveries nor returned.
    deposits_held_fen: int
    #: Overpayments and refunds the exchange has not paid back yet.
    refunds_due_fen: int
    #: Proceeds the exchange owes payees (paid out by Stripe Connect or by the exchange).
    proceeds_due_fen: int
    fees_fen: int

    @property
    def balance_fen(self) -> int:
        """The money still to move before the contract can complete: 0 when settled."""
        return self.outstanding_fen + self.deposits_held_fen + self.refunds_due_fen

    @property
    def settled(self) -> bool:
        return self.balance_fen == 0


def contract_position(session: Session, contract_id: int) -> ContractPosition:
    """The contract's position from its postings (all its accounts, all companies)."""
    rows: dict[str, int] = {
        AccountKind(kind).value: int(amount or 0)
        for kind, amount in session.execute(
            select(LedgerAccount.kind, func.sum(Posting.amount_fen))
            .join(Posting, Posting.account_id == LedgerAccount.id)
            .where(Posting.contract_id == contract_id)
            .group_by(LedgerAccount.kind)
        ).all()
    }

    def total(kind: AccountKind) -> int:
        return rows.get(kind.value, 0)

    currency = session.scalar(
        select(ContractBook.currency).where(ContractBook.contract_id == contract_id)
    )
    return ContractPosition(
        contract_id=contract_id,
        currency=currency,
        outstanding_fen=total(AccountKind.RECEIVABLE),
        deposits_held_fen=-total(AccountKind.DEPOSITS_HELD),
        refunds_due_fen=-total(AccountKind.REFUNDS_DUE),
        proceeds_due_fen=-total(AccountKind.PAYABLE),
        fees_fen=-total(AccountKind.FEE_REVENUE),
    )


def contract_balance(session: Session, contract_id: int) -> int:
    """The fen still to move on the contract (owed by payers + deposits held + refunds not
    yet paid back). The contracts context completes a contract only when this is 0."""
    return contract_position(session, contract_id).balance_fen


def deposit_held(session: Session, contract_id: int, company_id: int) -> int:
    """The deposit ``company_id`` has at the exchange for this contract (fen ≥ 0)."""
    total = session.scalar(
        select(func.sum(Posting.amount_fen))
        .join(LedgerAccount, Posting.account_id == LedgerAccount.id)
        .where(
            Posting.contract_id == contract_id,
            LedgerAccount.company_id == company_id,
            LedgerAccount.kind == AccountKind.DEPOSITS_HELD,
        )
    )
    return -int(total or 0)


def deposit_paid(session: Session, contract_id: int, company_id: int) -> int:
    """The deposits ``company_id`` paid in full on this contract (before netting)."""
    total = session.scalar(
        select(func.sum(Invoice.gross_fen)).where(
            Invoice.contract_id == contract_id,
            Invoice.payer_id == company_id,
            Invoice.kind == InvoiceKind.DEPOSIT,
            Invoice.released_at.is_not(None),
        )
    )
    return int(total or 0)


def contract_invoices(session: Session, contract_id: int) -> list[Invoice]:
    return list(
        session.scalars(
            select(Invoice).where(Invoice.contract_id == contract_id).order_by(Invoice.id)
        )
    )


SettledListener = Callable[[Session, Actor, int], object]
_settled_listeners: list[SettledListener] = []


def on_settled(listener: SettledListener) -> SettledListener:
    """Register ``listener(session, actor, contract_id)`` to run when a money event leaves the
    contract's balance at zero (registering the same function twice keeps one)."""
    if listener not in _settled_listeners:
        _settled_listeners.append(listener)
    return listener


def notify_settled(session: Session, actor: Actor, contract_id: int) -> bool:
    """Call the settled listeners if the contract's balance is zero now; True if it is.

    The caller holds the contract's locks (it has just moved money on it)."""
    session.flush()
    if contract_balance(session, contract_id) != 0:
        return False
    for listener in list(_settled_listeners):
        listener(session, actor, contract_id)
    return True
