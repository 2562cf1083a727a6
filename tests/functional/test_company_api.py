"""Members, invitations and company verification through the API: the same rules as the
company page and the administrators' queue (a company keeps an owner, rejections carry a
reason, refusals are 4xx with field errors and change nothing)."""

from __future__ import annotations

import json
import re

import pytest
from sqlalchemy import select

from exchange.accounts.models import Company, Membership, User
from exchange.accounts.rules import Role, VerificationStatus
from exchange.audit.models import AuditEvent
from exchange.notifications.models import EmailMessage
from tests.support.api import assert_error_shape, bearer, make_token
from tests.support.builders import make_company, make_user

BASE = "/api/v1/companies"


@pytest.fixture()
def world(db):
    company, owner = make_company(db)
    viewer = make_user(db)
    membership = Membership(user_id=viewer.id, company_id=company.id, role=Role.VIEWER)
    db.add(membership)
    pending, pending_owner = make_company(db, verified=False)
    admin = make_user(db, admin=True)
    db.flush()
    return {
        "company": company,
        "owner": owner,
        "viewer": viewer,
        "membership": membership,
        "pending": pending,
        "pending_owner": pending_owner,
        "as_owner": bearer(make_token(db, owner)),
        "as_viewer": bearer(make_token(db, viewer)),
        "as_admin": bearer(make_token(db, admin)),
    }


def _own_membership(db, world):
    return db.scalar(select(Membership.id).where(Membership.user_id == world["owner"].id))


# --- members ---------------------------------------------------------------------------------


def test_any_member_reads_the_members_with_their_roles(world, client):
    response = client.get(f"{BASE}/me/members", headers=world["as_viewer"])
    assert response.status_code == 200
    roles = {row["email"]: row["role"] for row in response.get_json()}
    assert roles == {world["owner"].email: "owner", world["viewer"].email: "viewer"}
    assert json.loads(response.headers["X-Pagination"])["total"] == 2
    ids = {row["id"] for row in response.get_json()}
    assert world["membership"].id in ids


def test_an_owner_changes_a_role_and_the_change_is_audited(world, client, db):
    url = f"{BASE}/me/members/{world['membership'].id}"
    response = client.patch(url, json={"role": "trader"}, headers=world["as_owner"])
    assert response.status_code == 200
    assert response.get_json()["role"] == "trader"
    db.expire_all()
    assert db.get(Membership, world["membership"].id).role is Role.TRADER
    actions = db.scalars(
        select(AuditEvent.action).where(
            AuditEvent.entity_type == "company",
            AuditEvent.entity_id == str(world["company"].id),
        )
    )
    assert "accounts:member:role_changed" in list(actions)
    unknown = client.patch(url, json={"role": "boss"}, headers=world["as_owner"])
    assert "role" in assert_error_shape(unknown, 422)["errors"]


def test_the_company_keeps_an_owner(world, client, db):
    mine = f"{BASE}/me/members/{_own_membership(db, world)}"
    demote = client.patch(mine, json={"role": "viewer"}, headers=world["as_owner"])
    assert_error_shape(demote, 409)
    leave = client.delete(mine, headers=world["as_owner"])
    assert_error_shape(leave, 409)
    db.expire_all()
    owner_role = db.scalar(select(Membership.role).where(Membership.user_id == world["owner"].id))
    assert owner_role is Role.OWNER


def test_a_removed_member_is_deactivated_and_their_token_refused(world, client, db):
    url = f"{BASE}/me/members/{world['membership'].id}"
    assert client.delete(url, headers=world["as_owner"]).status_code == 204
    db.expire_all()
    assert db.get(User, world["viewer"].id).is_active is False
    assert client.get("/api/v1/me", headers=world["as_viewer"]).status_code == 401
    again = client.delete(url, headers=world["as_owner"])
    assert_error_shape(again, 404)


# --- invitations -----------------------------------------------------------------------------


def test_an_invitation_is_mailed_listed_and_revoked_once(world, client, db):
    body = {"email": "New.Colleague@Example.com", "role": "viewer"}
    created = client.post(f"{BASE}/me/invitations", json=body, headers=world["as_owner"])
    assert created.status_code == 201
    invitation = created.get_json()
    assert invitation["email"] == "new.colleague@example.com" and invitation["role"] == "viewer"
    assert set(invitation) == {"id", "email", "role", "created_at", "expires_at"}
    mail = db.scalar(
        select(EmailMessage).where(EmailMessage.recipient == "new.colleague@example.com")
    )
    assert mail is not None and re.search(r"/invitations/[\w-]+", mail.body)

    listed = client.get(f"{BASE}/me/invitations", headers=world["as_owner"]).get_json()
    assert [row["id"] for row in listed] == [invitation["id"]]
    url = f"{BASE}/me/invitations/{invitation['id']}"
    assert client.delete(url, headers=world["as_owner"]).status_code == 204
    assert_error_shape(client.delete(url, headers=world["as_owner"]), 409)
    assert client.get(f"{BASE}/me/invitations", headers=world["as_owner"]).get_json() == []


def test_bad_invitations_are_refused_with_field_errors_and_nothing_is_sent(world, client, db):
    url = f"{BASE}/me/invitations"
    bad = client.post(
        url, json={"email": "not-an-address", "role": "boss"}, headers=world["as_owner"]
    )
    errors = assert_error_shape(bad, 422)["errors"]
    assert {"email", "role"} <= set(errors)
    member = client.post(url, json={"email": world["viewer"].email}, headers=world["as_owner"])
    assert "email" in assert_error_shape(member, 422)["errors"]
    sent = db.scalars(select(EmailMessage.recipient).where(EmailMessage.kind == "invitation"))
    assert list(sent) == []


def test_a_viewer_may_neither_invite_nor_see_invitations(world, client):
    body = {"email": "someone@example.com"}
    assert_error_shape(
        client.post(f"{BASE}/me/invitations", json=body, headers=world["as_viewer"]), 403
    )
    assert_error_shape(client.get(f"{BASE}/me/invitations", headers=world["as_viewer"]), 403)


# --- verification (administrators) -----------------------------------------------------------


def test_the_verification_queue_filters_by_status_and_name(world, client):
    pending = world["pending"]
    response = client.get(f"{BASE}?status=pending", headers=world["as_admin"])
    assert response.status_code == 200
    ids = {row["id"] for row in response.get_json()}
    assert pending.id in ids and world["company"].id not in ids
    assert all(row["verification_status"] == "pending" for row in response.get_json())
    found = client.get(f"{BASE}?q={pending.uscc}", headers=world["as_admin"]).get_json()
    assert [row["id"] for row in found] == [pending.id]
    bad = client.get(f"{BASE}?status=maybe", headers=world["as_admin"])
    assert "status" in json.dumps(assert_error_shape(bad, 422)["errors"])
    assert_error_shape(client.get(f"{BASE}?colour=red", headers=world["as_admin"]), 422)


def test_a_rejection_needs_a_reason_and_the_owners_are_told(world, client, db):
    url = f"{BASE}/{world['pending'].id}/verification"
    bare = client.post(url, json={"decision": "rejected"}, headers=world["as_admin"])
    assert "reason" in assert_error_shape(bare, 422)["errors"]
    db.expire_all()
    assert db.get(Company, world["pending"].id).verification_status is VerificationStatus.PENDING

    rejected = client.post(
        url,
        json={"decision": "rejected", "reason": "Licence unreadable"},
        headers=world["as_admin"],
    )
    assert rejected.status_code == 200
    body = rejected.get_json()
    assert body["verification_status"] == "rejected"
    assert body["verification_note"] == "Licence unreadable"
    told = db.scalars(
        select(EmailMessage.recipient).where(EmailMessage.kind == "verification_decision")
    )
    assert list(told) == [world["pending_owner"].email]


def test_a_verification_is_recorded_once(world, client):
    url = f"{BASE}/{world['pending'].id}/verification"
    first = client.post(url, json={"decision": "verified"}, headers=world["as_admin"])
    assert first.status_code == 200
    assert first.get_json()["verification_status"] == "verified"
    assert first.get_json()["verified_at"]
    again = client.post(url, json={"decision": "verified"}, headers=world["as_admin"])
    assert_error_shape(again, 409)
    wrong = client.post(url, json={"decision": "pending"}, headers=world["as_admin"])
    assert "decision" in assert_error_shape(wrong, 422)["errors"]
    missing = client.post(
        f"{BASE}/2147483647/verification", json={"decision": "verified"}, headers=world["as_admin"]
    )
    assert_error_shape(missing, 404)
