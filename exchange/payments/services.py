"""What other contexts call: the money flows of a contract.

The contracts context (above which only reporting sits) calls these from its own services, in
its own transaction, after it has authorised the contract event; they never commit. Amounts
are positive integer fen; who pays whom comes from ``rules.direction`` (a negative signed price
makes the producer the payer, and the exchange's fee follows the money to the payee):

    money = rules.direction(contract.seller_id, contract.buyer_id, contract.total_fen)
    # on activation
    issue_deposit_invoice(session, actor, contract.id, money.payer_id, money.payee_id,
                          rules.deposit_fen(contract.total_fen, contract.deposit_pct))
    # per accepted delivery (value = accepted t × (price + quality adjustment))
    d = rules.direction(contract.seller_id, contract.buyer_id,
                        rules.value_fen(accepted_t, contract.price + adjustment))
    issue_delivery_invoice(session, actor, contract.id, d.payer_id, d.payee_id, d.amount_fen,
                           contract_value_fen=abs(contract.total_fen), delivery_id=delivery.id)
    # final delivery accepted
    issue_settlement(session, actor, contract.id, money.payer_id, money.payee_id)
    # completion is allowed when
    contract_balance(session, contract.id) == 0
    # cancellation / termination
    close_contract(session, actor, contract.id, reason=..., forfeit_fen=...)
"""

from exchange.payments.books import ContractPosition, contract_balance, contract_position
from exchange.payments.flows import (
    Closure,
    Settlement,
    cancel_invoice,
    close_contract,
    issue_settlement,
)
from exchange.payments.invoices import (
    issue_delivery_invoice,
    issue_deposit_invoice,
    issue_fee_invoice,
)
from exchange.payments.refunds import refund

__all__ = [
    "Closure",
    "ContractPosition",
    "Settlement",
    "cancel_invoice",
    "close_contract",
    "contract_balance",
    "contract_position",
    "issue_delivery_invoice",
    "issue_deposit_invoice",
    "issue_fee_invoice",
    "issue_settlement",
    "refund",
]
