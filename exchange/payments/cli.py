"""``flask --app exchange ledger verify``: check that the ledger balances."""

from __future__ import annotations

import sys

import click
from flask import current_app
from flask.cli import AppGroup

from exchange.db import session_scope

ledger_cli = AppGroup("ledger", help="Check the payments ledger.")


@ledger_cli.command("verify")
def ledger_verify() -> None:
    """Every transaction sums to zero and every invoice agrees with its receivable (else exit 1)."""
    from exchange.payments.ledger import verify

    with session_scope(current_app) as session:
        report = verify(session)
    if report.ok:
        click.echo(
            f"OK: {report.transactions} transactions, {report.postings} postings, all balanced."
        )
        return
    for line in report.problems():
        click.echo(f"BROKEN: {line}", err=True)
    sys.exit(1)
