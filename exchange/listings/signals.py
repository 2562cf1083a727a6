"""Signals for contexts above listings (demand matching, live updates), which listings may not
import: they subscribe here instead.

``lot_changed`` is sent after the commit that changed a lot, never before (a rolled-back change
sends nothing), with ``lot_id`` and ``change`` — one of ``created``, ``terms``, ``assay``,
``submitted``, ``published``, ``rejected``, ``withdrawn``. Receivers must be quick or queue a job.
"""

from __future__ import annotations

from blinker import Namespace
from sqlalchemy.orm import Session

from exchange.db import after_commit

_signals = Namespace()

lot_changed = _signals.signal("lot-changed")


def lot_changed_after_commit(session: Session, lot_id: int, change: str) -> None:
    """Queue ``lot_changed`` for when ``session`` commits."""

    def send() -> None:
        lot_changed.send(None, lot_id=lot_id, change=change)

    after_commit(session, send)
