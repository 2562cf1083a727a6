"""Payments: signed Stripe webhooks through the route, a bank statement reconciled in one go,
and the ledger verification over what they posted.

Targets are for B2B volumes (a busy day is a few hundred payments): each webhook is one
transaction of ~36 statements (event stored, book and invoice locked, payment, two balanced
ledger transactions, two audit events), so on PostgreSQL it is bound by round trips.
"""

from __future__ import annotations

import json
import time
import uuid

from benchmarks.bench_audit import _scratch
from benchmarks.harness import Result, median, percentile
from exchange import create_app
from exchange.actor import SYSTEM
from exchange.db import make_engine, session_scope
from exchange.payments import bank, ledger, services
from exchange.schema import upgrade
from tests.support import fake_stripe
from tests.support.builders import actor_of, make_company, make_user
from tests.support.payments import new_contract_id

WEBHOOKS = 300
STATEMENT_LINES = 1000
SECRET = "whsec_bench"


def run(backend: str, url: str) -> list[Result]:
    url, drop = _scratch(backend, url)
    try:
        engine = make_engine(url)
        upgrade(engine)
        engine.dispose()
        app = create_app(
            {
                "DATABASE_URL": url,
                "TESTING": True,
                "RUN_JOBS_IN_PROCESS": False,
                "STRIPE_SECRET_KEY": "sk_bench",
                "STRIPE_WEBHOOK_SECRET": SECRET,
                "PAYMENTS_GATEWAY": "bank",
            }
        )
        with app.app_context(), app.test_request_context(), session_scope(app) as s:
            producer, _ = make_company(s, producer=True, buyer=False)
            buyer, _ = make_company(s, producer=False, buyer=True)
            admin = actor_of(make_user(s, admin=True))
            parties = {"producer": producer, "buyer": buyer}
            # One deposit per contract: each invoice bills a real contract of its own.
            refs = [
                services.issue_deposit_invoice(
                    s, SYSTEM, new_contract_id(s, parties), buyer.id, producer.id, 100_000
                ).reference
                for _ in range(WEBHOOKS + STATEMENT_LINES)
            ]
        client = app.test_client()
        samples = []
        start = time.perf_counter()
        for ref in refs[:WEBHOOKS]:
            evt = fake_stripe.event(
                "payment_intent.succeeded",
                {
                    "id": f"pi_bench_{uuid.uuid4().hex}",
                    "amount_received": 100_000,
                    "currency": "cny",
                    "metadata": {"invoice_reference": ref},
                },
            )
            payload = json.dumps(evt)
            t0 = time.perf_counter()
            response = client.post(
                "/payments/stripe/webhook",
                data=payload,
                headers={"Stripe-Signature": fake_stripe.sign(payload, SECRET)},
            )
            samples.append((time.perf_counter() - t0) * 1000)
            assert response.get_json()["outcome"] == "applied", response.get_data()
        webhook_rate = WEBHOOKS / (time.perf_counter() - start)
        statement = "date,amount,reference,payer\n" + "".join(
            f"2026-12-01,1000.00,{ref},Bench Co\n" for ref in refs[WEBHOOKS:]
        )
        t0 = time.perf_counter()
        with app.app_context(), app.test_request_context(), session_scope(app) as s:
            results, _ = bank.import_statement(s, admin, statement)
        import_s = time.perf_counter() - t0
        matched = sum(r.outcome == "matched" for r in results)
        t0 = time.perf_counter()
        with app.app_context(), session_scope(app) as s:
            report = ledger.verify(s)
        verify_s = time.perf_counter() - t0
        app.extensions["exchange.engine"].dispose()
        return [
            Result(
                f"stripe webhook → ledger ({backend})",
                f"{WEBHOOKS} signed events",
                median(samples),
                percentile(samples, 99),
                webhook_rate,
                "events/s",
                "≥ 10 events/s",
                webhook_rate >= 10,
            ),
            Result(
                f"bank statement import ({backend})",
                f"{STATEMENT_LINES} lines",
                import_s * 1000,
                None,
                STATEMENT_LINES / import_s,
                "lines/s",
                "≥ 15 lines/s, all matched",
                matched == STATEMENT_LINES and STATEMENT_LINES / import_s >= 15,
            ),
            Result(
                f"ledger verify ({backend})",
                f"{report.postings} postings",
                verify_s * 1000,
                None,
                report.postings / verify_s,
                "postings/s",
                "≥ 5,000 postings/s and OK",
                report.ok and report.postings / verify_s >= 5_000,
            ),
        ]
    finally:
        drop()
