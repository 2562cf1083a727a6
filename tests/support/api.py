"""Helpers for API tests: tokens for a user, and the Authorization header."""

from __future__ import annotations

from sqlalchemy.orm import Session

from exchange.accounts.models import User
from exchange.accounts.services import actor_for
from exchange.accounts.tokens import create_token


def make_token(db: Session, user: User, scope: str = "read_write", name: str = "test") -> str:
    """A new token for ``user``; returns its secret."""
    issued = create_token(db, actor_for(user, "127.0.0.1"), name, scope)
    db.flush()
    return issued.secret


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def assert_error_shape(response, status: int) -> dict:  # type: ignore[no-untyped-def]
    """The response is the API's JSON error with ``status``; returns the body."""
    assert response.status_code == status, response.get_data(as_text=True)[:500]
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert set(body) == {"code", "status", "message", "errors"}, body
    assert body["code"] == status
    assert isinstance(body["status"], str) and body["status"]
    assert isinstance(body["message"], str) and body["message"]
    assert isinstance(body["errors"], dict)
    return body
