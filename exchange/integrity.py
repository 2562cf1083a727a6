"""What ``audit verify`` checks beyond the hash chains: stored rows against their audit records.

The chains prove that no event was edited, removed or reordered. A context whose rows carry
legal weight (a signature, a weighbridge delivery, an evidence file) also proves that those
rows still say what their events recorded, and the ledger proves that it balances. Each check
returns ``(chain key, problem)`` pairs; the audit context runs them without depending on the
contexts that own the rows.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy.orm import Session

RecordCheck = Callable[[Session], list[tuple[str, str]]]


def _ledger_balances(session: Session) -> list[tuple[str, str]]:
    from exchange.payments.ledger import verify

    return [("ledger", problem) for problem in verify(session).problems()]


def record_checks() -> list[RecordCheck]:
    """Contract rows against the contract chains; the payments ledger balances."""
    from exchange.contracts.queries import check_all_records

    return [check_all_records, _ledger_balances]
