"""Pure money rules of the payments context: who pays whom, the exchange's fee, deposit netting,
an invoice's status, refunds, and invoice references with a check character.

No Flask, no database. Money is integer fen (minor units); prices per tonne are signed Decimals
(negative = a disposal fee the producer pays). Where a rule must round, it says how.
"""

from __future__ import annotations

import enum
import secrets
from dataclasses import dataclass
from decimal import ROUND_FLOOR, ROUND_HALF_UP, Decimal

HUNDRED = Decimal(100)


class InvoiceKind(enum.StrEnum):
    DEPOSIT = "deposit"  #: security paid on activation, held by the exchange, netted later
    DELIVERY = "delivery"  #: one accepted delivery, net of the deposit share
    SETTLEMENT = "settlement"  #: the final true-up; the remaining deposit is netted or returned
    REFUND = "refund"  #: money the exchange returns to a company (a credit note)
    FEE = "fee"  #: a charge of the exchange itself (no payee company)


class InvoiceStatus(enum.StrEnum):
    ISSUED = "issued"
    PARTIALLY_PAID = "partially_paid"
    PAID = "paid"
    OVERPAID = "overpaid"
    CANCELLED = "cancelled"
    REFUNDED = "refunded"


#: Statuses in which the payer still owes something.
OPEN_STATUSES = frozenset({InvoiceStatus.ISSUED, InvoiceStatus.PARTIALLY_PAID})
#: Kinds whose proceeds go to the payee (minus the exchange's fee) once fully paid.
PROCEEDS_KINDS = frozenset({InvoiceKind.DELIVERY, InvoiceKind.SETTLEMENT})


# --- direction and amounts ----------------------------------------------------------------------


@dataclass(frozen=True)
class Direction:
    """Who pays whom, and how much (always a positive amount)."""

    payer_id: int
    payee_id: int
    amount_fen: int
    #: True when the producer pays the buyer (a negative signed value: disposal).
    producer_pays: bool


def value_fen(quantity_t: Decimal, price_per_t: Decimal) -> int:
    """The signed value of ``quantity_t`` tonnes at ``price_per_t`` CNY/t, in fen.

    Rounded half away from zero to the fen, so a sale and the mirror disposal have the same size.
    Raises TypeError for floats (money is never a float).
    """
    if not isinstance(quantity_t, Decimal) or not isinstance(price_per_t, Decimal):
        raise TypeError("quantity and price must be Decimals")
    return int((quantity_t * price_per_t * HUNDRED).quantize(Decimal(1), ROUND_HALF_UP))


def direction(seller_id: int, buyer_id: int, signed_value_fen: int) -> Direction | None:
    """The money direction for a signed value between a contract's seller and buyer.

    A positive value is a sale: the buyer pays the seller. A negative value is a disposal fee:
    the seller (the producer) pays the buyer the absolute amount. Zero moves no money (None).
    Raises ValueError when seller and buyer are the same company.
    """
    if seller_id == buyer_id:
        raise ValueError("seller and buyer must differ")
    if signed_value_fen > 0:
        return Direction(buyer_id, seller_id, signed_value_fen, producer_pays=False)
    if signed_value_fen < 0:
        return Direction(seller_id, buyer_id, -signed_value_fen, producer_pays=True)
    return None


def deposit_fen(contract_value_fen: int, deposit_pct: Decimal) -> int:
    """The deposit for a contract: ``deposit_pct`` % of the absolute contract value, half-up.

    Raises ValueError unless 0 <= deposit_pct <= 100.
    """
    if not Decimal(0) <= deposit_pct <= HUNDRED:
        raise ValueError("deposit_pct must be between 0 and 100")
    amount = Decimal(abs(contract_value_fen)) * deposit_pct / HUNDRED
    return int(amount.quantize(Decimal(1), ROUND_HALF_UP))


def exchange_fee(gross_fen: int, fee_pct: Decimal, fee_min_fen: int) -> int:
    """The exchange's fee on ``gross_fen`` moved to a payee: ``fee_pct`` % (half-up), at least
    ``fee_min_fen``, never more than the amount itself; nothing on nothing.

    The fee follows the money: it is withheld from whoever receives it (the producer on a sale,
    the buyer on a disposal), as Stripe's application fee on a destination charge is.
    Raises ValueError for a negative amount, rate or minimum.
    """
    if gross_fen < 0 or fee_pct < 0 or fee_min_fen < 0:
        raise ValueError("amount, rate and minimum must not be negative")
    if gross_fen == 0:
        return 0
    fee = int((Decimal(gross_fen) * fee_pct / HUNDRED).quantize(Decimal(1), ROUND_HALF_UP))
    return min(max(fee, fee_min_fen), gross_fen)


def deposit_to_apply(
    gross_fen: int, deposit_paid_fen: int, deposit_held_fen: int, contract_value_fen: int
) -> int:
    """How much of the held deposit a delivery invoice of ``gross_fen`` consumes.

    Pro rata: the paid deposit times the delivery's share of the contract value, rounded down,
    never more than what is still held nor than the delivery itself. A delivery at or above
    the whole contract value (or an unknown value, 0) takes all that is held, up to its amount.
    Raises ValueError for negative inputs.
    """
    if min(gross_fen, deposit_paid_fen, deposit_held_fen) < 0:
        raise ValueError("amounts must not be negative")
    contract_value_fen = abs(contract_value_fen)
    if contract_value_fen == 0 or gross_fen >= contract_value_fen:
        share = deposit_held_fen
    else:
        share = deposit_paid_fen * gross_fen // contract_value_fen
    return min(share, deposit_held_fen, gross_fen)


def fee_share(part_fen: int, gross_fen: int, fee_fen: int) -> int:
    """The part of an invoice's fee that goes back with a refund of ``part_fen``: pro rata,
    rounded down (the exchange keeps the rounding). Raises ValueError outside 0..gross."""
    if not 0 <= part_fen <= gross_fen or not 0 <= fee_fen <= gross_fen:
        raise ValueError("part and fee must lie within the gross amount")
    if gross_fen == 0:
        return 0
    return fee_fen * part_fen // gross_fen


# --- an invoice's money state -------------------------------------------------------------------


@dataclass(frozen=True)
class InvoiceMoney:
    """What is known about one invoice's money, as stored on the invoice.

    ``paid_fen`` is every fen received (an overpayment included); ``claim_refunded_fen`` is what
    was given back and reduces the claim itself (a credit note); ``excess_refunded_fen`` is an
    overpayment given back, which leaves the claim as it was.
    """

    amount_fen: int
    paid_fen: int = 0
    claim_refunded_fen: int = 0
    excess_refunded_fen: int = 0
    cancelled: bool = False

    @property
    def effective_fen(self) -> int:
        """The claim after credit notes."""
        return self.amount_fen - self.claim_refunded_fen

    @property
    def collected_fen(self) -> int:
        """Money received and kept."""
        return self.paid_fen - self.claim_refunded_fen - self.excess_refunded_fen

    @property
    def open_fen(self) -> int:
        """What the payer still owes (0 once paid or cancelled)."""
        if self.cancelled:
            return 0
        return max(self.effective_fen - self.collected_fen, 0)

    @property
    def excess_fen(self) -> int:
        """Overpayment not yet given back (on a cancelled invoice: all that is still kept)."""
        if self.cancelled:
            return max(self.collected_fen, 0)
        return max(self.collected_fen - self.effective_fen, 0)

    @property
    def status(self) -> InvoiceStatus:
        return invoice_status(self)


def invoice_status(money: InvoiceMoney) -> InvoiceStatus:
    """The status an invoice's money implies.

    Cancelled wins; a claim refunded in full is ``refunded``; otherwise by what was collected
    against the claim: nothing → issued, some → partially paid, all → paid, more → overpaid.
    A zero-amount invoice (fully covered by the deposit) is paid from the start.
    """
    if money.cancelled:
        return InvoiceStatus.CANCELLED
    if money.amount_fen > 0 and money.effective_fen == 0 and money.claim_refunded_fen > 0:
        return InvoiceStatus.REFUNDED
    collected, effective = money.collected_fen, money.effective_fen
    if collected > effective:
        return InvoiceStatus.OVERPAID
    if collected == effective:
        return InvoiceStatus.PAID
    if collected <= 0:
        return InvoiceStatus.ISSUED
    return InvoiceStatus.PARTIALLY_PAID


def apply_payment(open_fen: int, received_fen: int) -> tuple[int, int]:
    """Split a payment into ``(applied to the claim, excess)``. Raises ValueError unless > 0."""
    if received_fen <= 0 or open_fen < 0:
        raise ValueError("a payment must be positive")
    applied = min(open_fen, received_fen)
    return applied, received_fen - applied


def split_refund(money: InvoiceMoney, refund_fen: int) -> tuple[int, int]:
    """Split a refund into ``(from the overpayment, from the claim)``: the overpayment goes
    back first. Raises ValueError when the refund is not positive or more than was collected.
    """
    if refund_fen <= 0:
        raise ValueError("a refund must be positive")
    if refund_fen > money.collected_fen:
        raise ValueError("cannot refund more than was collected")
    from_excess = min(money.excess_fen, refund_fen)
    return from_excess, refund_fen - from_excess


def cancellable(status: InvoiceStatus) -> bool:
    """Only invoices with something still open can be cancelled; what was collected on a
    partially paid one becomes a refund due to the payer."""
    return status in OPEN_STATUSES


# --- references ---------------------------------------------------------------------------------

#: 31 symbols: digits and capitals without I, O, S, V, Z (easily misread), as in GB 32100.
ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_VALUE = {c: i for i, c in enumerate(ALPHABET)}
#: Letters payers type by mistake for the symbols they resemble.
_CONFUSABLE = str.maketrans({"O": "0", "I": "1", "S": "5", "Z": "2", "V": "U"})
PREFIX = "RMX-INV-"
BODY_LENGTH = 8


def check_char(body: str) -> str:
    """The check symbol of ``body``: weights 3^i mod 31, as GB 32100 does.

    31 is prime and neighbouring weights differ, so every single wrong symbol and every swap
    of two neighbouring different symbols changes the check. Raises ValueError for a symbol
    outside the alphabet.
    """
    total = 0
    for i, char in enumerate(body):
        if char not in _VALUE:
            raise ValueError(f"{char!r} is not a reference symbol")
        total += _VALUE[char] * pow(3, i, 31)
    return ALPHABET[(31 - total % 31) % 31]


def make_reference(body: str) -> str:
    """``RMX-INV-XXXX-XXXX-C`` from an 8-symbol body. Raises ValueError for a bad body."""
    if len(body) != BODY_LENGTH:
        raise ValueError("a reference body has 8 symbols")
    return f"{PREFIX}{body[:4]}-{body[4:]}-{check_char(body)}"


def new_reference(randbelow: object = None) -> str:
    """A fresh random reference (31^8 ≈ 8.5e11 possibilities; the database keeps it unique)."""
    pick = randbelow if callable(randbelow) else secrets.randbelow
    return make_reference("".join(ALPHABET[pick(31)] for _ in range(BODY_LENGTH)))


def parse_reference(text: str) -> str | None:
    """The canonical reference written somewhere in ``text`` (a bank memo), or None.

    Tolerant of case, spaces, hyphens and the look-alike letters O/I/S/Z/V; strict about the
    check symbol, so a mistyped reference never matches another invoice.
    """
    squeezed = "".join(ch for ch in text.upper() if ch.isalnum())
    start = squeezed.find("RMXINV")
    while start != -1:
        candidate = squeezed[start + 6 : start + 6 + BODY_LENGTH + 1].translate(_CONFUSABLE)
        if len(candidate) == BODY_LENGTH + 1 and all(c in _VALUE for c in candidate):
            body, check = candidate[:BODY_LENGTH], candidate[BODY_LENGTH]
            if check_char(body) == check:
                return make_reference(body)
        start = squeezed.find("RMXINV", start + 1)
    return None


def looks_like_reference(text: str) -> bool:
    """True when ``text`` mentions an exchange reference at all (valid or not)."""
    return "RMXINV" in "".join(ch for ch in text.upper() if ch.isalnum())


# --- display ------------------------------------------------------------------------------------


def fen_to_decimal(amount_fen: int) -> Decimal:
    """Fen as a Decimal of yuan, for display and for forms."""
    return (Decimal(amount_fen) / HUNDRED).quantize(Decimal("0.01"))


def parse_amount_fen(text: str) -> int:
    """A yuan amount typed by a person ("1,234.5", "¥ 12") as fen.

    Raises ValueError for anything that is not a positive amount with at most 2 decimals.
    """
    cleaned = text.strip().replace(",", "").replace("¥", "").replace("￥", "").strip()
    if cleaned.upper().startswith("CNY"):
        cleaned = cleaned[3:].strip()
    try:
        value = Decimal(cleaned)
    except Exception as exc:
        raise ValueError("not an amount") from exc
    if not value.is_finite() or value <= 0:
        raise ValueError("not a positive amount")
    fen = value * HUNDRED
    if fen != fen.to_integral_value(ROUND_FLOOR):
        raise ValueError("more than two decimals")
    return int(fen)
