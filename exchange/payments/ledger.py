"""The double-entry ledger: accounts, balanced transactions, balances and verification.

Amounts are signed fen: a debit is positive, a credit negative, and every transaction sums to
zero per currency. ``post`` refuses anything else before it reaches the database; PostgreSQL
refuses it again at commit (a deferred constraint trigger), and ``verify`` finds it on any
backend. Postings are append-only: a correction is ``reverse``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from sqlalchemy import event, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from exchange.actor import Actor
from exchange.db import utcnow
from exchange.payments.models import (
    COMPANY_KINDS,
    AccountKind,
    Invoice,
    LedgerAccount,
    LedgerTransaction,
    Posting,
    TxnKind,
)
from exchange.payments.rules import InvoiceKind


class UnbalancedTransaction(ValueError):
    """A transaction whose postings do not sum to zero: a bug, never a user error."""


# --- accounts -----------------------------------------------------------------------------------


def account_key(
    kind: AccountKind, currency: str, *, company_id: int | None = None, gateway: str | None = None
) -> str:
    if kind in COMPANY_KINDS:
        if company_id is None:
            raise ValueError(f"a {kind} account belongs to a company")
        return f"company:{company_id}:{kind}:{currency}"
    if kind is AccountKind.GATEWAY_CLEARING:
        if gateway is None:
            raise ValueError("a clearing account belongs to a gateway")
        return f"gateway:{gateway}:{currency}"
    return f"exchange:{kind}:{currency}"


def insert_ignoring_duplicates(session: Session, table: object, values: dict[str, object]) -> None:
    """``INSERT … ON CONFLICT DO NOTHING``: safe when two transactions create the same row."""
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    session.execute(insert(table).values(**values).on_conflict_do_nothing())  # type: ignore[arg-type]


def account(
    session: Session,
    kind: AccountKind,
    currency: str,
    *,
    company_id: int | None = None,
    gateway: str | None = None,
) -> LedgerAccount:
    """The account for ``kind`` (created on first use; concurrent creators get the same row)."""
    key = account_key(kind, currency, company_id=company_id, gateway=gateway)
    cache: dict[str, LedgerAccount] = session.info.setdefault(_CACHE, {})
    if key in cache:
        return cache[key]
    by_key = select(LedgerAccount).where(LedgerAccount.key == key)
    found = session.scalar(by_key)
    if found is not None and found.key == key:
        cache[key] = found
        return found
    insert_ignoring_duplicates(
        session,
        LedgerAccount.__table__,
        {
            "key": key,
            "kind": kind.value,
            "company_id": company_id if kind in COMPANY_KINDS else None,
            "gateway": gateway if kind is AccountKind.GATEWAY_CLEARING else None,
            "currency": currency,
            "created_at": utcnow(),
        },
    )
    # written by Core: refresh any older object with this id (see webhooks.store)
    created = session.scalar(by_key.execution_options(populate_existing=True))
    assert created is not None
    cache[key] = created
    return created


_CACHE = "ledger_accounts"


@event.listens_for(Session, "after_soft_rollback")
def _forget_accounts(session: Session, _previous: object) -> None:
    """An account created in a rolled-back (sub)transaction is gone: drop the cache."""
    session.info.pop(_CACHE, None)


@event.listens_for(Session, "after_transaction_end")
def _forget_accounts_at_the_end(session: Session, transaction: object) -> None:
    if getattr(transaction, "parent", None) is None:  # the outermost one, not a savepoint
        session.info.pop(_CACHE, None)


def company_account(
    session: Session, company_id: int, kind: AccountKind, currency: str
) -> LedgerAccount:
    return account(session, kind, currency, company_id=company_id)


def exchange_account(session: Session, kind: AccountKind, currency: str) -> LedgerAccount:
    return account(session, kind, currency)


def clearing_account(session: Session, gateway: str, currency: str) -> LedgerAccount:
    return account(session, AccountKind.GATEWAY_CLEARING, currency, gateway=gateway)


# --- posting ------------------------------------------------------------------------------------

Line = tuple[LedgerAccount, int]


def _merged(lines: Iterable[Line]) -> list[Line]:
    totals: dict[int, int] = defaultdict(int)
    accounts: dict[int, LedgerAccount] = {}
    for acct, amount in lines:
        if not isinstance(amount, int) or isinstance(amount, bool):
            raise TypeError("ledger amounts are integer fen")
        totals[acct.id] += amount
        accounts[acct.id] = acct
    return [(accounts[i], total) for i, total in totals.items() if total != 0]


def post(
    session: Session,
    actor: Actor,
    kind: TxnKind,
    currency: str,
    lines: Iterable[Line],
    *,
    contract_id: int,
    invoice_id: int | None = None,
    payment_id: int | None = None,
    gateway_event_id: int | None = None,
    bank_transfer_id: int | None = None,
    idem_key: str | None = None,
    reverses_id: int | None = None,
    memo: str = "",
) -> LedgerTransaction | None:
    """Record one balanced transaction; None when every line nets to zero (nothing moved).

    Lines on the same account are merged. Each posting carries the contract and what caused it
    (invoice, gateway event, bank transfer). ``idem_key`` is unique in the database, so the same
    thing posted twice fails loudly instead of counting twice.

    Raises UnbalancedTransaction when the lines do not sum to zero, ValueError when an account
    has another currency.
    """
    merged = _merged(lines)
    if not merged:
        return None
    if sum(amount for _, amount in merged) != 0:
        raise UnbalancedTransaction(
            f"{kind} for contract {contract_id} does not balance: "
            + ", ".join(f"{a.key} {amount:+d}" for a, amount in merged)
        )
    if any(a.currency != currency for a, _ in merged):
        raise ValueError("every account of a transaction must be in its currency")
    txn = LedgerTransaction(
        created_at=utcnow(),
        kind=kind,
        currency=currency,
        idem_key=idem_key,
        contract_id=contract_id,
        invoice_id=invoice_id,
        payment_id=payment_id,
        gateway_event_id=gateway_event_id,
        bank_transfer_id=bank_transfer_id,
        reverses_id=reverses_id,
        actor_user_id=actor.user_id,
        memo=memo[:300],
    )
    session.add(txn)
    session.flush()
    session.add_all(
        Posting(
            transaction_id=txn.id,
            account_id=acct.id,
            amount_fen=amount,
            currency=currency,
            contract_id=contract_id,
            invoice_id=invoice_id,
            gateway_event_id=gateway_event_id,
            bank_transfer_id=bank_transfer_id,
        )
        for acct, amount in merged
    )
    session.flush()
    return txn


def reverse(
    session: Session, actor: Actor, txn: LedgerTransaction, memo: str = ""
) -> LedgerTransaction | None:
    """A new transaction with every posting of ``txn`` negated (the only way to correct)."""
    lines = [(p.account, -p.amount_fen) for p in txn.postings]
    return post(
        session,
        actor,
        TxnKind.REVERSAL,
        txn.currency,
        lines,
        contract_id=txn.contract_id,
        invoice_id=txn.invoice_id,
        payment_id=txn.payment_id,
        gateway_event_id=txn.gateway_event_id,
        bank_transfer_id=txn.bank_transfer_id,
        idem_key=f"reverse:{txn.id}",
        reverses_id=txn.id,
        memo=memo or f"reversal of transaction {txn.id}",
    )


# --- balances -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Balance:
    """Balances by account kind in one currency, signed as stored (debit positive)."""

    currency: str
    by_kind: dict[AccountKind, int]

    def get(self, kind: AccountKind) -> int:
        return self.by_kind.get(kind, 0)

    @property
    def owes_exchange(self) -> int:
        """What the company still owes (its receivable)."""
        return self.get(AccountKind.RECEIVABLE)

    @property
    def proceeds_due(self) -> int:
        """The exchange owes the company (its payable, a credit): positive = owed to it."""
        return -self.get(AccountKind.PAYABLE)

    @property
    def deposits_held(self) -> int:
        return -self.get(AccountKind.DEPOSITS_HELD)

    @property
    def refunds_due(self) -> int:
        return -self.get(AccountKind.REFUNDS_DUE)


def _balances(session: Session, *where: object) -> dict[str, Balance]:
    rows = session.execute(
        select(LedgerAccount.currency, LedgerAccount.kind, func.sum(Posting.amount_fen))
        .join(Posting, Posting.account_id == LedgerAccount.id)
        .where(*where)  # type: ignore[arg-type]
        .group_by(LedgerAccount.currency, LedgerAccount.kind)
    ).all()
    result: dict[str, dict[AccountKind, int]] = defaultdict(dict)
    for currency, kind, total in rows:
        result[currency][AccountKind(kind)] = int(total or 0)
    return {c: Balance(c, kinds) for c, kinds in result.items()}


def company_balances(
    session: Session, company_id: int, contract_id: int | None = None
) -> dict[str, Balance]:
    """The company's four accounts by currency (optionally for one contract only)."""
    where = [LedgerAccount.company_id == company_id]
    if contract_id is not None:
        where.append(Posting.contract_id == contract_id)
    return _balances(session, *where)


def contract_account_balances(
    session: Session, contract_id: int
) -> list[tuple[LedgerAccount, int]]:
    """Every account the contract touched, with the contract's part of its balance."""
    rows = session.execute(
        select(LedgerAccount, func.sum(Posting.amount_fen))
        .join(Posting, Posting.account_id == LedgerAccount.id)
        .where(Posting.contract_id == contract_id)
        .group_by(LedgerAccount.id)
        .order_by(LedgerAccount.key)
    ).all()
    return [(acct, int(total or 0)) for acct, total in rows]


def exchange_balances(session: Session) -> list[tuple[LedgerAccount, int]]:
    """The exchange's and the gateways' accounts with their balances."""
    rows = session.execute(
        select(LedgerAccount, func.coalesce(func.sum(Posting.amount_fen), 0))
        .outerjoin(Posting, Posting.account_id == LedgerAccount.id)
        .where(LedgerAccount.company_id.is_(None))
        .group_by(LedgerAccount.id)
        .order_by(LedgerAccount.key)
    ).all()
    return [(acct, int(total)) for acct, total in rows]


def postings(
    session: Session,
    *,
    contract_id: int | None = None,
    company_id: int | None = None,
    limit: int = 500,
) -> list[Posting]:
    """Postings, newest first, for a contract and/or a company's accounts."""
    query = select(Posting).join(LedgerAccount, Posting.account_id == LedgerAccount.id)
    if contract_id is not None:
        query = query.where(Posting.contract_id == contract_id)
    if company_id is not None:
        query = query.where(LedgerAccount.company_id == company_id)
    return list(session.scalars(query.order_by(Posting.id.desc()).limit(limit)))


# --- verification -------------------------------------------------------------------------------


@dataclass
class LedgerReport:
    transactions: int = 0
    postings: int = 0
    #: (transaction id, currency, sum) of every transaction that does not sum to zero.
    unbalanced: list[tuple[int, str, int]] = field(default_factory=list)
    #: Transactions with fewer than two postings.
    lopsided: list[int] = field(default_factory=list)
    #: (invoice reference, what the invoice says is open, what the receivable says).
    invoice_mismatches: list[tuple[str, int, int]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.unbalanced or self.lopsided or self.invoice_mismatches)

    def problems(self) -> Sequence[str]:
        lines = [f"transaction {t} ({c}) sums to {s:+d} fen" for t, c, s in self.unbalanced]
        lines += [f"transaction {t} has fewer than two postings" for t in self.lopsided]
        lines += [
            f"invoice {ref}: {open_:d} fen open, receivable says {rec:d}"
            for ref, open_, rec in self.invoice_mismatches
        ]
        return lines


def verify(session: Session) -> LedgerReport:
    """Check the whole ledger: every transaction balances per currency and has two or more
    postings, and every invoice's open amount equals its payer's receivable for it."""
    report = LedgerReport(
        transactions=session.scalar(select(func.count()).select_from(LedgerTransaction)) or 0,
        postings=session.scalar(select(func.count()).select_from(Posting)) or 0,
    )
    report.unbalanced = [
        (int(t), c, int(s))
        for t, c, s in session.execute(
            select(Posting.transaction_id, Posting.currency, func.sum(Posting.amount_fen))
            .group_by(Posting.transaction_id, Posting.currency)
            .having(func.sum(Posting.amount_fen) != 0)
            .order_by(Posting.transaction_id)
        )
    ]
    counts = (
        select(LedgerTransaction.id, func.count(Posting.id).label("n"))
        .outerjoin(Posting, Posting.transaction_id == LedgerTransaction.id)
        .group_by(LedgerTransaction.id)
        .subquery()
    )
    report.lopsided = [int(i) for i in session.scalars(select(counts.c.id).where(counts.c.n < 2))]
    receivable = dict(
        session.execute(
            select(Posting.invoice_id, func.sum(Posting.amount_fen))
            .join(LedgerAccount, Posting.account_id == LedgerAccount.id)
            .where(LedgerAccount.kind == AccountKind.RECEIVABLE, Posting.invoice_id.is_not(None))
            .group_by(Posting.invoice_id)
        ).all()
    )
    for invoice in session.scalars(
        select(Invoice).where(Invoice.kind != InvoiceKind.REFUND).order_by(Invoice.id)
    ):
        on_ledger = int(receivable.get(invoice.id, 0) or 0)
        if on_ledger != invoice.open_fen:
            report.invoice_mismatches.append((invoice.reference, invoice.open_fen, on_ledger))
    return report
