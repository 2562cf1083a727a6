"""Who is acting: passed explicitly from the boundary (request, CLI, job) into every service."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Actor:
    user_id: int | None
    company_id: int | None = None
    is_admin: bool = False
    #: The user's role in their company (owner, trader, viewer), if any.
    role: str | None = None
    ip: str | None = None


#: Work done by the platform itself (jobs, migrations, the demo loader).
SYSTEM = Actor(user_id=None)
