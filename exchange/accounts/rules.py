"""Pure rules of the accounts context: the USCC check digit, roles and who may do what."""

from __future__ import annotations

import enum
import re

#: GB 32100-2015 code symbols: digits and capitals without I, O, S, V, Z; value = index.
USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
USCC_WEIGHTS = [pow(3, i, 31) for i in range(17)]
_USCC_SHAPE = re.compile(rf"^[{USCC_ALPHABET}]{{18}}$")


def uscc_check_char(first17: str) -> str:
    """The 18th character for the first 17 of a unified social credit code (GB 32100)."""
    total = sum(USCC_ALPHABET.index(c) * w for c, w in zip(first17, USCC_WEIGHTS, strict=True))
    return USCC_ALPHABET[(31 - total % 31) % 31]


def normalize_uscc(raw: str) -> str:
    return raw.strip().upper().replace(" ", "")


def uscc_problem(raw: str) -> str | None:
    """Why ``raw`` is not a valid USCC (``length``, ``characters``, ``check_digit``), or None."""
    code = normalize_uscc(raw)
    if len(code) != 18:
        return "length"
    if not _USCC_SHAPE.match(code):
        return "characters"
    if uscc_check_char(code[:17]) != code[17]:
        return "check_digit"
    return None


class Role(enum.StrEnum):
    OWNER = "owner"
    TRADER = "trader"
    VIEWER = "viewer"


class VerificationStatus(enum.StrEnum):
    PENDING = "pending"
    VERIFIED = "verified"
    REJECTED = "rejected"


class Sector(enum.StrEnum):
    STEEL = "steel"
    CEMENT = "cement"
    BRICKS_CERAMICS = "bricks_ceramics"
    ROAD = "road"
    CHEMICALS = "chemicals"
    SOIL = "soil"
    BACKFILL = "backfill"
    ALUMINA = "alumina"
    BYPRODUCT_PROCESSING = "byproduct_processing"
    LOGISTICS = "logistics"
    OTHER = "other"


#: What a role may do inside its company.
ROLE_PERMISSIONS: dict[Role, frozenset[str]] = {
    Role.OWNER: frozenset({"manage_company", "manage_members", "trade", "sign", "view"}),
    Role.TRADER: frozenset({"trade", "sign", "view"}),
    Role.VIEWER: frozenset({"view"}),
}


def role_allows(role: str | None, permission: str) -> bool:
    if role is None:
        return False
    return permission in ROLE_PERMISSIONS.get(Role(role), frozenset())


#: Verification transitions an administrator may make (state → allowed targets).
VERIFICATION_TRANSITIONS: dict[VerificationStatus, frozenset[VerificationStatus]] = {
    VerificationStatus.PENDING: frozenset(
        {VerificationStatus.VERIFIED, VerificationStatus.REJECTED}
    ),
    VerificationStatus.REJECTED: frozenset({VerificationStatus.VERIFIED}),
    VerificationStatus.VERIFIED: frozenset({VerificationStatus.REJECTED}),
}


def password_problem(password: str) -> str | None:
    """``too_short`` / ``too_long`` or None: length beats composition rules (NIST SP 800-63B)."""
    if len(password) < MIN_PASSWORD_LENGTH:
        return "too_short"
    if len(password) > 200:
        return "too_long"
    return None


MIN_PASSWORD_LENGTH = 10


class TokenScope(enum.StrEnum):
    """What an API token may do: ``read`` refuses every write, ``read_write`` acts as its user."""

    READ = "read"
    READ_WRITE = "read_write"
