"""API token services on a real database: hashing, audit events, limits, authentication."""

import datetime as dt

import pytest
from sqlalchemy import select

from exchange.accounts import tokens
from exchange.accounts.models import ApiToken
from exchange.audit.models import AuditEvent
from exchange.audit.services import verify
from exchange.errors import Conflict, Forbidden, NotFound, Unauthorized, ValidationError
from tests.support.builders import actor_of, make_company


@pytest.fixture()
def owner(db):
    company, user = make_company(db)
    return user, actor_of(user, company)


def _events(db, user_id):
    return list(
        db.scalars(
            select(AuditEvent.action)
            .where(AuditEvent.chain_key == f"user:{user_id}")
            .order_by(AuditEvent.chain_seq)
        )
    )


def test_create_and_revoke_are_audited_on_the_users_chain(db, owner):
    user, actor = owner
    issued = tokens.create_token(db, actor, "  ERP  ", "read_write")
    assert issued.secret.startswith("rmx_") and len(issued.secret) > 40
    assert issued.token.name == "ERP"
    tokens.revoke_token(db, actor, issued.token.id)
    assert _events(db, user.id) == ["accounts:api_token:created", "accounts:api_token:revoked"]
    assert verify(db).ok
    event = db.scalar(select(AuditEvent).where(AuditEvent.chain_key == f"user:{user.id}"))
    assert issued.secret not in event.data


def test_authentication_refuses_unknown_and_revoked_secrets(db, owner):
    _user, actor = owner
    issued = tokens.create_token(db, actor, "x", "read")
    assert tokens.authenticate_token(db, issued.secret, "10.0.0.1").id == issued.token.id
    with pytest.raises(Unauthorized):
        tokens.authenticate_token(db, issued.secret + "x", None)
    with pytest.raises(Unauthorized):
        tokens.authenticate_token(db, "not-even-prefixed", None)
    tokens.revoke_token(db, actor, issued.token.id)
    with pytest.raises(Unauthorized):
        tokens.authenticate_token(db, issued.secret, None)


def test_last_use_is_recorded_at_most_once_a_minute(db, owner):
    _user, actor = owner
    issued = tokens.create_token(db, actor, "x", "read")
    token = tokens.authenticate_token(db, issued.secret, "10.0.0.1")
    first = token.last_used_at
    assert first is not None and token.last_used_ip == "10.0.0.1"
    tokens.authenticate_token(db, issued.secret, "10.0.0.2")
    assert token.last_used_at == first and token.last_used_ip == "10.0.0.1"
    token.last_used_at = first - dt.timedelta(minutes=2)
    tokens.authenticate_token(db, issued.secret, "10.0.0.2")
    assert token.last_used_at > first - dt.timedelta(minutes=2)
    assert token.last_used_ip == "10.0.0.2"


def test_bad_name_or_scope_is_a_field_error(db, owner):
    _user, actor = owner
    with pytest.raises(ValidationError) as exc:
        tokens.create_token(db, actor, " ", "admin")
    assert set(exc.value.errors) == {"name", "scope"}


def test_a_user_keeps_at_most_twenty_active_tokens(db, owner):
    _user, actor = owner
    made = [tokens.create_token(db, actor, f"t{n}", "read") for n in range(20)]
    with pytest.raises(Conflict):
        tokens.create_token(db, actor, "one too many", "read")
    tokens.revoke_token(db, actor, made[0].token.id)
    tokens.create_token(db, actor, "fits again", "read")


def test_only_the_owner_of_a_token_revokes_it_once(db, owner):
    _user, actor = owner
    issued = tokens.create_token(db, actor, "x", "read")
    other_company, other_user = make_company(db)
    with pytest.raises(NotFound):
        tokens.revoke_token(db, actor_of(other_user, other_company), issued.token.id)
    tokens.revoke_token(db, actor, issued.token.id)
    with pytest.raises(Conflict):
        tokens.revoke_token(db, actor, issued.token.id)
    assert db.get(ApiToken, issued.token.id).revoked_at is not None


def test_anonymous_actor_has_no_tokens(db):
    from exchange.actor import Actor

    with pytest.raises(Forbidden):
        tokens.create_token(db, Actor(None), "x", "read")
