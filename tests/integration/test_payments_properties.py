"""Property test on a real database: random sequences of invoices, bank and card payments,
duplicated and reordered webhooks, refunds (ours and Stripe's), cancellations, settlement and
closing. After every sequence the ledger balances, no payment is counted twice, and each
contract's balance equals what its invoices say."""

from __future__ import annotations

import datetime as dt

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from exchange.errors import DomainError
from exchange.payments import books, services
from exchange.payments.models import Gateway, Payment
from exchange.payments.refunds import admin_refund, record_bank_refund
from exchange.payments.rules import OPEN_STATUSES, InvoiceKind
from tests.support import fake_stripe
from tests.support.payments import (
    SYSTEM,
    assert_books_consistent,
    bank_pay,
    deliver,
    new_contract_id,
)

OPS = [
    "deposit",
    "delivery",
    "settle",
    "bank",
    "card",
    "replay",
    "flush",
    "refund",
    "cancel",
    "stripe_refund",
    "stripe_confirm",
    "payout",
    "close",
]
VALUE = 10_000_000


class Run:
    """One random sequence against one contract, with a model of the money sent in."""

    def __init__(self, db, parties, fake, data) -> None:
        self.db, self.parties, self.fake, self.data = db, parties, fake, data
        self.contract = new_contract_id(db, parties)
        self.buyer, self.producer = parties["buyer"].id, parties["producer"].id
        self.queue: list[dict] = []
        self.delivered: list[dict] = []
        self.sent: dict[str, int] = {}  # external ref -> amount, for money really sent in
        self.deliveries = 0

    def draw(self, strategy):
        return self.data.draw(strategy)

    def invoices(self, refunds: bool = False):
        return [
            i
            for i in books.contract_invoices(self.db, self.contract)
            if (i.kind is InvoiceKind.REFUND) == refunds
        ]

    def pick(self, items):
        return self.draw(st.sampled_from(items)) if items else None

    def amount(self, reference: int) -> int:
        choices = [reference] if reference > 0 else []
        return self.draw(
            st.one_of(
                st.sampled_from(choices) if choices else st.nothing(),
                st.integers(min_value=1, max_value=max(2 * reference, 5_000_000)),
            )
        )

    # --- operations -----------------------------------------------------------------------------

    def op_deposit(self):
        services.issue_deposit_invoice(
            self.db,
            SYSTEM,
            self.contract,
            self.buyer,
            self.producer,
            self.draw(st.integers(min_value=1, max_value=VALUE)),
        )

    def op_delivery(self):
        self.deliveries += 1
        services.issue_delivery_invoice(
            self.db,
            SYSTEM,
            self.contract,
            self.buyer,
            self.producer,
            self.draw(st.integers(min_value=1, max_value=VALUE)),
            contract_value_fen=VALUE,
            delivery_id=self.deliveries,
        )

    def op_settle(self):
        services.issue_settlement(
            self.db,
            SYSTEM,
            self.contract,
            self.buyer,
            self.producer,
            self.draw(st.integers(min_value=0, max_value=VALUE)),
        )

    def op_bank(self):
        invoice = self.pick(self.invoices())
        if invoice is None:
            return
        amount = self.amount(invoice.open_fen)
        ref = f"prop:{len(self.sent)}"
        if bank_pay(self.db, invoice, amount, ref=ref) is not None:
            self.sent[ref] = amount

    def op_card(self):
        invoice = self.pick(self.invoices())
        if invoice is None:
            return
        amount = self.amount(invoice.open_fen)
        intent = fake_stripe.new_id("pi")
        self.fake.intents[intent] = {
            "id": intent,
            "amount_received": amount,
            "amount_refunded": 0,
            "currency": "cny",
            "latest_charge": fake_stripe.new_id("ch"),
        }
        metadata = {"invoice_reference": invoice.reference}
        events = [
            fake_stripe.event(
                "checkout.session.completed",
                {
                    "id": fake_stripe.new_id("cs"),
                    "payment_status": "paid",
                    "payment_intent": intent,
                    "amount_total": amount,
                    "currency": "cny",
                    "metadata": metadata,
                },
            ),
            fake_stripe.event(
                "payment_intent.succeeded",
                {
                    "id": intent,
                    "amount_received": amount,
                    "currency": "cny",
                    "metadata": metadata,
                },
            ),
        ]
        self.sent[intent] = amount
        now = self.draw(st.sampled_from([0, 1, 2]))  # how many to deliver at once
        for evt in events[:now]:
            self._deliver(evt)
        self.queue += events[now:]

    def _deliver(self, evt):
        outcome = deliver(self.db, evt)
        if any(evt is d for d in self.delivered):
            assert outcome == "duplicate"
        self.delivered.append(evt)

    def op_replay(self):
        evt = self.pick(self.delivered)
        if evt is not None:
            assert deliver(self.db, evt) == "duplicate"

    def op_flush(self):
        order = self.draw(st.permutations(list(range(len(self.queue)))))
        queued, self.queue = self.queue, []
        for index in order:
            self._deliver(queued[index])

    def op_refund(self):
        invoice = self.pick(self.invoices())
        if invoice is None or invoice.money.collected_fen <= 0:
            return
        amount = self.draw(st.integers(min_value=1, max_value=invoice.money.collected_fen))
        admin_refund(self.db, self.parties["admin_actor"], invoice.id, amount, reason="prop")

    def op_cancel(self):
        open_ = [i for i in self.invoices() if i.status in OPEN_STATUSES]
        invoice = self.pick(open_)
        if invoice is not None:
            services.cancel_invoice(self.db, SYSTEM, invoice.id, reason="prop")

    def op_stripe_refund(self):
        """Someone refunds on Stripe's side; the event may arrive now or later."""
        intents = [i for i in self.fake.intents.values() if i["id"] in self.sent]
        intent = self.pick([i for i in intents if i["amount_refunded"] < i["amount_received"]])
        if intent is None:
            return
        room = intent["amount_received"] - intent["amount_refunded"]
        intent["amount_refunded"] += self.draw(st.integers(min_value=1, max_value=room))
        evt = self.fake.charge_refunded(intent["id"])
        if self.draw(st.booleans()):
            self._deliver(evt)
        else:
            self.queue.append(evt)

    def op_stripe_confirm(self):
        """Stripe reports our own refunds (the cumulative total, now)."""
        payments = self.db.scalars(select(Payment).where(Payment.gateway == Gateway.STRIPE)).all()
        payment = self.pick([p for p in payments if p.external_ref in self.fake.intents])
        if payment is not None:
            self._deliver(self.fake.charge_refunded(payment.external_ref))

    def op_payout(self):
        waiting = [
            r
            for r in self.invoices(refunds=True)
            if r.gateway == "bank" and r.paid_fen < r.amount_fen
        ]
        refund = self.pick(waiting)
        if refund is not None:
            record_bank_refund(
                self.db,
                self.parties["admin_actor"],
                refund.id,
                sent_on=dt.date(2026, 12, 1),
                bank_reference="prop",
            )

    def op_close(self):
        held = books.deposit_held(self.db, self.contract, self.buyer)
        services.close_contract(
            self.db,
            SYSTEM,
            self.contract,
            reason="prop",
            forfeit_fen=self.draw(st.integers(min_value=0, max_value=held)),
        )

    def run(self):
        for _ in range(self.draw(st.integers(min_value=1, max_value=14))):
            op = self.draw(st.sampled_from(OPS))
            savepoint = self.db.begin_nested()
            try:
                getattr(self, f"op_{op}")()
            except DomainError:
                savepoint.rollback()  # a refusal changes nothing, as in a request
            else:
                savepoint.commit()
        self.op_flush()

    def check(self):
        assert_books_consistent(self.db, [self.contract])
        refs = self.db.scalars(select(Payment.external_ref)).all()
        assert len(refs) == len(set(refs))  # no payment twice
        received = self.db.scalar(select(func.coalesce(func.sum(Payment.amount_fen), 0)))
        assert received == sum(self.sent.values())  # every payment sent is counted, once


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_random_money_sequences_keep_the_books(app, db, parties, stripe_on, data):
    with app.test_request_context():
        outer = db.begin_nested()
        try:
            run = Run(db, parties, stripe_on, data)
            run.run()
            run.check()
        finally:
            outer.rollback()
            # The next example reuses this session; SQLite reuses the rolled-back ids.
            db.expire_all()
            stripe_on.intents.clear()
