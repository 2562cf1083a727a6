"""``flask --app exchange match ...``: rebuild or sweep the match table. Each commits once."""

from __future__ import annotations

import time

import click
from flask import current_app
from flask.cli import AppGroup

from exchange.db import session_scope

match_cli = AppGroup("match", help="Matching lots with demands.")


@match_cli.command("rebuild")
def rebuild() -> None:
    """Recompute every open demand's matches from scratch (after changing freight settings)."""
    from exchange.demand.sweep import sweep

    started = time.perf_counter()
    with current_app.test_request_context(), session_scope(current_app) as session:
        report = sweep(session, full=True)
    click.echo(
        f"Rebuilt matches for {report.demands} demands ({report.lots} lots matched) "
        f"in {time.perf_counter() - started:.1f} s; {report.expired} demands expired."
    )


@match_cli.command("sweep")
def sweep_once() -> None:
    """Recompute what changed since the last sweep (what the periodic job does)."""
    from exchange.demand.sweep import sweep

    with current_app.test_request_context(), session_scope(current_app) as session:
        report = sweep(session)
    kind = "full rebuild" if report.full else "incremental"
    click.echo(
        f"Sweep {report.sweep_id} ({kind}): {report.lots} lots, {report.demands} demands "
        f"recomputed; {report.expired} demands expired."
    )
