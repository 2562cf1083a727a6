"""Which actions a user may take on a contract now, derived from the transition table.

Pure: the services refuse what this refuses, and the pages and buttons show only what it
offers, so nobody re-implements the lifecycle.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from exchange.contracts.rules import ContractEvent, ContractStatus, allowed_events


class Party(enum.StrEnum):
    SELLER = "seller"
    BUYER = "buyer"
    ADMIN = "admin"


class Action(enum.StrEnum):
    SIGN = "sign"
    AMEND = "amend"
    REQUEST_CANCELLATION = "request_cancellation"
    RECORD_DISPATCH = "record_dispatch"
    RECORD_RECEIPT = "record_receipt"
    OPEN_DISPUTE = "open_dispute"
    #: Add an evidence file to the open dispute (either party, while it is undecided).
    ADD_EVIDENCE = "add_evidence"
    RESOLVE_DISPUTE = "resolve_dispute"


@dataclass(frozen=True)
class Standing:
    """What the acting user is to this contract and what their company has already done."""

    party: Party | None
    #: The user's role allows signing (owner, trader) and the company is verified.
    may_sign: bool = False
    #: The user's role allows trading actions (owner, trader) and the company is verified.
    may_trade: bool = False
    #: The user's side already holds a valid signature on the current terms.
    signed: bool = False
    #: The user's side already asked to cancel.
    cancel_requested: bool = False
    #: Some delivery is dispatched and awaits the buyer's receipt.
    awaiting_receipt: bool = False


_E = ContractEvent


def available_actions(
    state: ContractStatus | str,
    standing: Standing,
    *,
    disputed_from: ContractStatus | str | None = None,
) -> list[Action]:
    """The actions ``standing`` may take on a contract in ``state``, in display order.

    Signing and amending exist while ``fully_signed`` is allowed; deliveries while the first
    delivery or completion is (active, in delivery); cancellation, disputes and their
    resolution as the table says. Parties need the role for it; administrators only resolve.
    """
    events = set(allowed_events(state, disputed_from=disputed_from))
    party = standing.party
    actions: list[Action] = []
    if party in (Party.SELLER, Party.BUYER):
        if _E.FULLY_SIGNED in events and standing.may_sign and not standing.signed:
            actions.append(Action.SIGN)
        if _E.FULLY_SIGNED in events and standing.may_trade:
            actions.append(Action.AMEND)
        delivering = _E.FIRST_DELIVERY_RECORDED in events or _E.COMPLETED in events
        if delivering and standing.may_trade and party is Party.SELLER:
            actions.append(Action.RECORD_DISPATCH)
        if (
            _E.COMPLETED in events
            and standing.may_trade
            and party is Party.BUYER
            and standing.awaiting_receipt
        ):
            actions.append(Action.RECORD_RECEIPT)
        if _E.DISPUTE_OPENED in events and standing.may_trade:
            actions.append(Action.OPEN_DISPUTE)
        if str(state) == ContractStatus.DISPUTED and standing.may_trade:
            actions.append(Action.ADD_EVIDENCE)
        if (
            _E.CANCELLED_BY_MUTUAL_CONSENT in events
            and standing.may_trade
            and not standing.cancel_requested
        ):
            actions.append(Action.REQUEST_CANCELLATION)
    elif party is Party.ADMIN and events & {
        _E.DISPUTE_RESOLVED_TO_ACTIVE,
        _E.DISPUTE_RESOLVED_TO_IN_DELIVERY,
        _E.TERMINATED_BY_ADMIN,
    }:
        actions.append(Action.RESOLVE_DISPUTE)
    return actions
