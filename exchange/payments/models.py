"""Payments tables: the double-entry ledger, invoices, payments, bank transfers, gateway events,
Stripe Checkout sessions and connected accounts.

Invoices and contract books name their contract by a foreign key; ledger rows carry the
contract's id for grouping.
Ledger transactions and postings are never updated or deleted (PostgreSQL and SQLite triggers
refuse it); a correction is a reversing transaction. PostgreSQL also refuses, at commit, any
transaction whose postings do not sum to zero per currency.
"""

from __future__ import annotations

import datetime as dt
import enum

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    Enum,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from exchange.accounts.models import Company
from exchange.db import Base
from exchange.payments.rules import InvoiceKind, InvoiceMoney, InvoiceStatus

#: Money columns: signed 64-bit fen (an Integer on SQLite, whose integers are 64-bit anyway).
Fen = BigInteger().with_variant(Integer, "sqlite")


def _enum(cls: type, length: int = 20) -> Enum:
    return Enum(
        cls,
        native_enum=False,
        length=length,
        values_callable=lambda e: [m.value for m in e],
        validate_strings=True,
    )


class AccountKind(enum.StrEnum):
    # per company, from the exchange's point of view
    RECEIVABLE = "receivable"  #: the company owes the exchange (invoices not yet paid)
    PAYABLE = "payable"  #: the exchange owes the company its proceeds (net of the fee)
    DEPOSITS_HELD = "deposits_held"  #: deposits the company paid, held until netted or returned
    REFUNDS_DUE = "refunds_due"  #: overpayments and refunds the exchange must pay back
    # the exchange's own
    ESCROW = "escrow"  #: invoiced value not yet released to the payee (or the deposit account)
    FEE_REVENUE = "fee_revenue"
    # per gateway
    GATEWAY_CLEARING = "gateway_clearing"  #: money at the bank account or the Stripe balance


COMPANY_KINDS = frozenset(
    {
        AccountKind.RECEIVABLE,
        AccountKind.PAYABLE,
        AccountKind.DEPOSITS_HELD,
        AccountKind.REFUNDS_DUE,
    }
)


class TxnKind(enum.StrEnum):
    INVOICE_ISSUED = "invoice_issued"
    PAYMENT_RECEIVED = "payment_received"
    INVOICE_RELEASED = "invoice_released"
    INVOICE_CANCELLED = "invoice_cancelled"
    REFUND_DUE = "refund_due"
    REFUND_PAID = "refund_paid"
    CONNECT_TRANSFER = "connect_transfer"
    DEPOSIT_FORFEITED = "deposit_forfeited"
    REVERSAL = "reversal"


class Gateway(enum.StrEnum):
    BANK = "bank"
    STRIPE = "stripe"


class LedgerAccount(Base):
    __tablename__ = "ledger_accounts"
    __table_args__ = (
        CheckConstraint("length(currency) = 3", name="currency_code"),
        CheckConstraint(
            "(company_id IS NOT NULL) = (kind IN "
            "('receivable', 'payable', 'deposits_held', 'refunds_due'))",
            name="company_accounts_have_a_company",
        ),
        CheckConstraint(
            "(gateway IS NOT NULL) = (kind = 'gateway_clearing')", name="gateway_accounts"
        ),
        Index("ix_ledger_accounts_company_id", "company_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    #: ``company:12:receivable:CNY``, ``exchange:escrow:CNY``, ``gateway:bank:CNY``.
    key: Mapped[str] = mapped_column(String(80), unique=True)
    kind: Mapped[AccountKind] = mapped_column(_enum(AccountKind))
    company_id: Mapped[int | None] = mapped_column(ForeignKey("companies.id", ondelete="RESTRICT"))
    gateway: Mapped[str | None] = mapped_column(String(10))
    currency: Mapped[str] = mapped_column(String(3))
    created_at: Mapped[dt.datetime] = mapped_column(server_default=func.now())

    company: Mapped[Company | None] = relationship()


class ContractBook(Base):
    """The payments side of one contract: its currency, and the row whose lock serialises the
    contract's money events; it is always locked after the contract's own row."""

    __tablename__ = "contract_books"
    __table_args__ = (CheckConstraint("length(currency) = 3", name="currency_code"),)

    contract_id: Mapped[int] = mapped_column(
        ForeignKey("contracts.id", ondelete="RESTRICT"), primary_key=True, autoincrement=False
    )
    currency: Mapped[str] = mapped_column(String(3))
    created_at: Mapped[dt.datetime] = mapped_column(server_default=func.now())


class Invoice(Base):
    __tablename__ = "invoices"
    __table_args__ = (
        CheckConstraint("amount_fen >= 0", name="amount_not_negative"),
        CheckConstraint("deposit_applied_fen >= 0", name="applied_not_negative"),
        CheckConstraint("gross_fen = amount_fen + deposit_applied_fen", name="gross_adds_up"),
        CheckConstraint("fee_fen >= 0 AND fee_fen <= gross_fen", name="fee_in_range"),
        CheckConstraint(
            "paid_fen >= 0 AND claim_refunded_fen >= 0 AND excess_refunded_fen >= 0",
            name="money_not_negative",
        ),
        CheckConstraint(
            "claim_refunded_fen + excess_refunded_fen <= paid_fen", name="refunds_within_paid"
        ),
        CheckConstraint("claim_refunded_fen <= amount_fen", name="claim_refund_within_amount"),
        CheckConstraint("payer_id IS NOT NULL OR kind = 'refund'", name="payer_present"),
        CheckConstraint("payee_id IS NOT NULL OR kind = 'fee'", name="payee_present"),
        CheckConstraint(
            "payer_id IS NULL OR payee_id IS NULL OR payer_id <> payee_id", name="two_parties"
        ),
        CheckConstraint(
            "(refund_of_id IS NOT NULL) = (kind = 'refund')", name="refunds_name_their_invoice"
        ),
        CheckConstraint("length(currency) = 3", name="currency_code"),
        Index("ix_invoices_contract_id", "contract_id"),
        Index("ix_invoices_payer_id_status", "payer_id", "status"),
        Index("ix_invoices_payee_id_status", "payee_id", "status"),
        Index("ix_invoices_status_due_on", "status", "due_on"),
        Index("ix_invoices_refund_of_id", "refund_of_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    #: ``RMX-INV-XXXX-XXXX-C``: what the payer writes on a bank transfer (check symbol last).
    reference: Mapped[str] = mapped_column(String(24), unique=True)
    contract_id: Mapped[int] = mapped_column(ForeignKey("contracts.id", ondelete="RESTRICT"))
    #: The accepted delivery a delivery invoice bills (no FK until contracts lands).
    delivery_id: Mapped[int | None] = mapped_column(Integer)
    kind: Mapped[InvoiceKind] = mapped_column(_enum(InvoiceKind, 12))
    status: Mapped[InvoiceStatus] = mapped_column(
        _enum(InvoiceStatus, 16), default=InvoiceStatus.ISSUED
    )
    payer_id: Mapped[int | None] = mapped_column(ForeignKey("companies.id", ondelete="RESTRICT"))
    payee_id: Mapped[int | None] = mapped_column(ForeignKey("companies.id", ondelete="RESTRICT"))
    currency: Mapped[str] = mapped_column(String(3), default="CNY")
    #: What the payer pays through this invoice (after the deposit share).
    amount_fen: Mapped[int] = mapped_column(Fen)
    #: The value billed: amount + deposit applied.
    gross_fen: Mapped[int] = mapped_column(Fen)
    deposit_applied_fen: Mapped[int] = mapped_column(Fen, default=0)
    #: The exchange's fee withheld from the payee's proceeds when the invoice is released.
    fee_fen: Mapped[int] = mapped_column(Fen, default=0)
    #: Every fen received, an overpayment included (for a refund: paid out).
    paid_fen: Mapped[int] = mapped_column(Fen, default=0)
    #: Given back, reducing the claim (credit notes).
    claim_refunded_fen: Mapped[int] = mapped_column(Fen, default=0)
    #: Overpayment given back.
    excess_refunded_fen: Mapped[int] = mapped_column(Fen, default=0)
    #: bank | stripe: the gateway offered to the payer (for a refund: the one paying it out).
    gateway: Mapped[str] = mapped_column(String(10))
    description: Mapped[str] = mapped_column(String(300), default="")
    issued_at: Mapped[dt.datetime]
    due_on: Mapped[dt.date] = mapped_column(Date)
    #: Set once by the overdue job (the parties were told).
    overdue_at: Mapped[dt.datetime | None]
    #: When the proceeds went to the payee (or the deposit into the deposit account); once.
    released_at: Mapped[dt.datetime | None]
    cancelled_at: Mapped[dt.datetime | None]
    cancel_reason: Mapped[str | None] = mapped_column(String(300))
    #: For a refund: the invoice whose money goes back.
    refund_of_id: Mapped[int | None] = mapped_column(ForeignKey("invoices.id", ondelete="RESTRICT"))
    #: For a card refund: the payment it goes back through and Stripe's refund id.
    refund_payment_id: Mapped[int | None] = mapped_column(
        ForeignKey("payments.id", ondelete="RESTRICT", use_alter=True)
    )
    gateway_ref: Mapped[str | None] = mapped_column(String(80))
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))

    payer: Mapped[Company | None] = relationship(foreign_keys=[payer_id])
    payee: Mapped[Company | None] = relationship(foreign_keys=[payee_id])
    refund_of: Mapped[Invoice | None] = relationship(remote_side=[id], foreign_keys=[refund_of_id])

    @property
    def money(self) -> InvoiceMoney:
        return InvoiceMoney(
            amount_fen=self.amount_fen,
            paid_fen=self.paid_fen,
            claim_refunded_fen=self.claim_refunded_fen,
            excess_refunded_fen=self.excess_refunded_fen,
            cancelled=self.cancelled_at is not None,
        )

    @property
    def open_fen(self) -> int:
        if self.kind is InvoiceKind.REFUND:
            return 0 if self.cancelled_at else self.amount_fen - self.paid_fen
        return self.money.open_fen

    @property
    def excess_fen(self) -> int:
        return 0 if self.kind is InvoiceKind.REFUND else self.money.excess_fen


class Payment(Base):
    """Money received for an invoice: one Stripe PaymentIntent or one bank transfer."""

    __tablename__ = "payments"
    __table_args__ = (
        UniqueConstraint("gateway", "external_ref"),
        CheckConstraint("amount_fen > 0", name="amount_positive"),
        CheckConstraint(
            "applied_fen >= 0 AND excess_fen >= 0 AND applied_fen + excess_fen = amount_fen",
            name="split_adds_up",
        ),
        CheckConstraint(
            "refunded_fen >= 0 AND refunded_fen <= amount_fen", name="refunded_in_range"
        ),
        CheckConstraint("length(currency) = 3", name="currency_code"),
        Index("ix_payments_invoice_id", "invoice_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    invoice_id: Mapped[int] = mapped_column(ForeignKey("invoices.id", ondelete="RESTRICT"))
    gateway: Mapped[str] = mapped_column(String(10))
    #: The PaymentIntent id, or ``transfer:<bank transfer id>``: one payment per external thing.
    external_ref: Mapped[str] = mapped_column(String(80))
    amount_fen: Mapped[int] = mapped_column(Fen)
    applied_fen: Mapped[int] = mapped_column(Fen)
    excess_fen: Mapped[int] = mapped_column(Fen, default=0)
    currency: Mapped[str] = mapped_column(String(3))
    received_at: Mapped[dt.datetime]
    #: Stripe Connect destination charge: the payee's account and the application fee.
    destination_account: Mapped[str | None] = mapped_column(String(40))
    application_fee_fen: Mapped[int] = mapped_column(Fen, default=0)
    #: Card refunds Stripe reported for this payment (cumulative ``amount_refunded``).
    refunded_fen: Mapped[int] = mapped_column(Fen, default=0)
    gateway_event_id: Mapped[int | None] = mapped_column(
        ForeignKey("gateway_events.id", ondelete="RESTRICT")
    )
    bank_transfer_id: Mapped[int | None] = mapped_column(
        ForeignKey("bank_transfers.id", ondelete="RESTRICT"), unique=True
    )

    invoice: Mapped[Invoice] = relationship(foreign_keys=[invoice_id])


class LedgerTransaction(Base):
    __tablename__ = "ledger_transactions"
    __table_args__ = (
        CheckConstraint("length(currency) = 3", name="currency_code"),
        Index("ix_ledger_transactions_contract_id", "contract_id"),
        Index("ix_ledger_transactions_invoice_id", "invoice_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    created_at: Mapped[dt.datetime]
    kind: Mapped[TxnKind] = mapped_column(_enum(TxnKind))
    currency: Mapped[str] = mapped_column(String(3))
    #: What the transaction does once: ``payment:12``, ``release:7``... (unique when set).
    idem_key: Mapped[str | None] = mapped_column(String(80), unique=True)
    #: The contract the money belongs to (its invoices and book carry the foreign key).
    contract_id: Mapped[int] = mapped_column(Integer)
    invoice_id: Mapped[int | None] = mapped_column(ForeignKey("invoices.id", ondelete="RESTRICT"))
    payment_id: Mapped[int | None] = mapped_column(ForeignKey("payments.id", ondelete="RESTRICT"))
    gateway_event_id: Mapped[int | None] = mapped_column(
        ForeignKey("gateway_events.id", ondelete="RESTRICT")
    )
    bank_transfer_id: Mapped[int | None] = mapped_column(
        ForeignKey("bank_transfers.id", ondelete="RESTRICT")
    )
    #: The transaction this one reverses (corrections never edit).
    reverses_id: Mapped[int | None] = mapped_column(
        ForeignKey("ledger_transactions.id", ondelete="RESTRICT")
    )
    actor_user_id: Mapped[int | None] = mapped_column(Integer)
    memo: Mapped[str] = mapped_column(String(300), default="")

    postings: Mapped[list[Posting]] = relationship(
        back_populates="transaction", order_by="Posting.id"
    )


class Posting(Base):
    """One line of a ledger transaction: signed fen, debit positive, credit negative."""

    __tablename__ = "ledger_postings"
    __table_args__ = (
        CheckConstraint("amount_fen <> 0", name="amount_not_zero"),
        CheckConstraint("length(currency) = 3", name="currency_code"),
        Index("ix_ledger_postings_transaction_id", "transaction_id"),
        Index("ix_ledger_postings_account_id_contract_id", "account_id", "contract_id"),
        Index("ix_ledger_postings_contract_id", "contract_id"),
        Index("ix_ledger_postings_invoice_id", "invoice_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    transaction_id: Mapped[int] = mapped_column(
        ForeignKey("ledger_transactions.id", ondelete="RESTRICT")
    )
    account_id: Mapped[int] = mapped_column(ForeignKey("ledger_accounts.id", ondelete="RESTRICT"))
    amount_fen: Mapped[int] = mapped_column(Fen)
    currency: Mapped[str] = mapped_column(String(3))
    # What caused it, copied from the transaction so balances filter without a join.
    contract_id: Mapped[int] = mapped_column(Integer)
    invoice_id: Mapped[int | None] = mapped_column(ForeignKey("invoices.id", ondelete="RESTRICT"))
    gateway_event_id: Mapped[int | None] = mapped_column(
        ForeignKey("gateway_events.id", ondelete="RESTRICT")
    )
    bank_transfer_id: Mapped[int | None] = mapped_column(
        ForeignKey("bank_transfers.id", ondelete="RESTRICT")
    )

    transaction: Mapped[LedgerTransaction] = relationship(back_populates="postings")
    account: Mapped[LedgerAccount] = relationship()


class BankTransferStatus(enum.StrEnum):
    MATCHED = "matched"  #: posted to an invoice
    UNMATCHED = "unmatched"  #: no invoice found; waits for an administrator


class BankTransfer(Base):
    """One incoming transfer on the exchange's bank account, entered or imported by an admin."""

    __tablename__ = "bank_transfers"
    __table_args__ = (
        CheckConstraint("amount_fen > 0", name="amount_positive"),
        CheckConstraint("occurrence >= 1", name="occurrence_positive"),
        CheckConstraint("length(currency) = 3", name="currency_code"),
        UniqueConstraint("fingerprint", "occurrence"),
        Index("ix_bank_transfers_status", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    received_on: Mapped[dt.date] = mapped_column(Date)
    amount_fen: Mapped[int] = mapped_column(Fen)
    currency: Mapped[str] = mapped_column(String(3), default="CNY")
    #: The memo as the bank printed it.
    reference_text: Mapped[str] = mapped_column(String(200))
    payer_name: Mapped[str] = mapped_column(String(200))
    #: SHA-256 of date|amount|memo|payer: the same statement line imported twice is refused.
    fingerprint: Mapped[str] = mapped_column(String(64))
    #: The n-th identical line (two equal transfers on one day are two transfers).
    occurrence: Mapped[int] = mapped_column(Integer, default=1)
    status: Mapped[BankTransferStatus] = mapped_column(_enum(BankTransferStatus, 10))
    invoice_id: Mapped[int | None] = mapped_column(ForeignKey("invoices.id", ondelete="RESTRICT"))
    note: Mapped[str] = mapped_column(String(300), default="")
    source: Mapped[str] = mapped_column(String(20))  #: form | csv
    created_at: Mapped[dt.datetime]
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    matched_at: Mapped[dt.datetime | None]

    invoice: Mapped[Invoice | None] = relationship()


class GatewayEventStatus(enum.StrEnum):
    APPLIED = "applied"
    PENDING = "pending"  #: arrived before what it refers to; applied when that arrives
    IGNORED = "ignored"  #: a type the exchange does not act on
    FAILED = "failed"  #: refers to something unknown or inconsistent; needs an administrator


class GatewayEvent(Base):
    """A webhook event, stored once by its id; a replay finds it and changes nothing."""

    __tablename__ = "gateway_events"
    __table_args__ = (
        UniqueConstraint("gateway", "event_id"),
        Index("ix_gateway_events_status_object_ref", "status", "object_ref"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    gateway: Mapped[str] = mapped_column(String(10))
    event_id: Mapped[str] = mapped_column(String(80))
    type: Mapped[str] = mapped_column(String(80))
    #: The gateway's own time of the event (Unix seconds), for ordering.
    created: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"))
    #: The PaymentIntent / account the event is about, to find pending events.
    object_ref: Mapped[str | None] = mapped_column(String(80))
    payload: Mapped[str] = mapped_column(Text)
    status: Mapped[GatewayEventStatus] = mapped_column(_enum(GatewayEventStatus, 10))
    note: Mapped[str] = mapped_column(String(300), default="")
    received_at: Mapped[dt.datetime]
    applied_at: Mapped[dt.datetime | None]


class CheckoutSession(Base):
    """A Stripe Checkout Session created for an invoice (what we asked Stripe for)."""

    __tablename__ = "checkout_sessions"
    __table_args__ = (
        UniqueConstraint("invoice_id", "attempt"),
        CheckConstraint("amount_fen > 0", name="amount_positive"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    invoice_id: Mapped[int] = mapped_column(ForeignKey("invoices.id", ondelete="RESTRICT"))
    attempt: Mapped[int] = mapped_column(Integer)
    session_id: Mapped[str] = mapped_column(String(80), unique=True)
    url: Mapped[str] = mapped_column(String(500))
    amount_fen: Mapped[int] = mapped_column(Fen)
    destination_account: Mapped[str | None] = mapped_column(String(40))
    application_fee_fen: Mapped[int] = mapped_column(Fen, default=0)
    idempotency_key: Mapped[str] = mapped_column(String(120))
    created_at: Mapped[dt.datetime]
    expires_at: Mapped[dt.datetime]


class ConnectedAccount(Base):
    """A company's Stripe Connect account, for destination charges to it."""

    __tablename__ = "connected_accounts"

    id: Mapped[int] = mapped_column(primary_key=True)
    company_id: Mapped[int] = mapped_column(
        ForeignKey("companies.id", ondelete="RESTRICT"), unique=True
    )
    account_id: Mapped[str] = mapped_column(String(40), unique=True)
    charges_enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    payouts_enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    details_submitted: Mapped[bool] = mapped_column(Boolean, default=False)
    #: The ``created`` of the last ``account.updated`` applied: older events change nothing.
    last_event_created: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), default=0
    )
    created_at: Mapped[dt.datetime]
    updated_at: Mapped[dt.datetime]

    company: Mapped[Company] = relationship()
