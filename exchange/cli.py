"""Command-line tools: ``flask --app exchange <command>``. Each command commits once."""

from __future__ import annotations

import sys

import click
from flask import Flask, current_app
from flask.cli import AppGroup

from exchange.actor import SYSTEM
from exchange.db import session_scope

audit_cli = AppGroup("audit", help="Verify and seal the audit trail.")
jobs_cli = AppGroup("jobs", help="Background jobs.")


@click.command("create-admin")
@click.argument("email")
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True)
def create_admin(email: str, password: str) -> None:
    """Create a platform administrator (or reset an administrator's password)."""
    from exchange.accounts.companies import create_admin as create
    from exchange.errors import DomainError

    try:
        with session_scope(current_app) as session:
            create(session, email, password, SYSTEM)
    except DomainError as exc:
        raise click.ClickException(f"{exc.message} {exc.errors or ''}".strip()) from exc
    click.echo(f"Administrator {email.lower()} is ready.")


@audit_cli.command("verify")
def audit_verify() -> None:
    """Walk every chain and checkpoint; print OK with counts, or the first broken link."""
    from exchange.audit.services import verify

    with session_scope(current_app) as session:
        report = verify(session)
    if report.ok:
        click.echo(
            f"OK: {report.events} events in {report.chains} chains, "
            f"{report.checkpoints} checkpoints, {report.unsealed_events} events not yet sealed; "
            f"{report.record_checks} record checks (contract rows, ledger) passed."
        )
        return
    first = report.first_break
    assert first is not None
    click.echo(
        f"BROKEN: {first.reason} (event {first.event_id}, chain {first.chain_key}); "
        f"{len(report.breaks)} problem(s) in {report.events} events.",
        err=True,
    )
    sys.exit(1)


@audit_cli.command("checkpoint")
def audit_checkpoint() -> None:
    """Seal all new events into a checkpoint digest."""
    from exchange.audit.services import create_checkpoint

    with session_scope(current_app) as session:
        cp = create_checkpoint(session)
        message = (
            f"Checkpoint {cp.id}: {cp.event_count} events, digest {cp.digest}"
            if cp
            else "Nothing new to seal."
        )
    click.echo(message)


@click.command("load-demo")
def load_demo() -> None:
    """Load the demo companies and users once (running it again changes nothing)."""
    from exchange.demo import DEMO_PASSWORD, load

    with session_scope(current_app) as session:
        created = load(session)
    click.echo("Demo data loaded." if created else "Demo data already present; nothing changed.")
    from exchange.demo import logins

    click.echo(f"Demo logins (password for all: {DEMO_PASSWORD}):")
    for email, what in logins():
        click.echo(f"  {email:<34} {what}")


@jobs_cli.command("worker")
def jobs_worker() -> None:
    """Run the periodic jobs (closing, checkpoints...) in the foreground."""
    from exchange.jobs import worker

    worker(current_app._get_current_object())  # type: ignore[attr-defined]


def init_app(app: Flask) -> None:
    from exchange.demand.cli import match_cli

    app.cli.add_command(match_cli)
    app.cli.add_command(create_admin)
    app.cli.add_command(load_demo)
    app.cli.add_command(audit_cli)
    app.cli.add_command(jobs_cli)

    from exchange.payments.cli import ledger_cli

    app.cli.add_command(ledger_cli)
