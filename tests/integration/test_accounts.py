"""Accounts services on a real database."""

import pytest
from sqlalchemy import func, select

from exchange.accounts import companies, services
from exchange.accounts.models import Company, LoginFailure, Membership, User
from exchange.accounts.rules import Role, VerificationStatus
from exchange.audit.models import AuditEvent
from exchange.errors import Conflict, Forbidden, ValidationError
from exchange.notifications.models import EmailMessage
from tests.support.builders import PASSWORD, actor_of, make_company, make_user, valid_uscc

FORM = {
    "legal_name_zh": "新注册水泥有限公司",
    "legal_name_en": "",
    "uscc": "",
    "is_producer": False,
    "is_buyer": True,
    "sector": "cement",
    "province": "37",
    "city": "淄博市",
    "address": "",
    "site_name": "一号窑",
    "latitude": "36.8",
    "longitude": "118.0",
    "contact_name": "王经理",
    "contact_phone": "0533-1234567",
    "email": "",
    "password": "a-long-password",
}


def _register(app, db, **changes):
    data = {
        **FORM,
        "uscc": valid_uscc(),
        "email": f"new{valid_uscc()[-6:].lower()}@example.test",
        **changes,
    }
    with app.test_request_context():
        services.register_company(db, data, "10.0.0.9", "zh_Hans_CN")
    return data


def test_registration_creates_a_pending_company_with_owner_site_and_audit(app, db):
    data = _register(app, db)
    company = db.scalar(select(Company).where(Company.uscc == data["uscc"]))
    assert company.verification_status is VerificationStatus.PENDING
    assert company.sites[0].name == "一号窑"
    owner = company.memberships[0]
    assert owner.role is Role.OWNER and owner.user.email == data["email"]
    assert owner.user.email_confirmed_at is None
    event = db.scalar(select(AuditEvent).where(AuditEvent.chain_key == f"company:{company.id}"))
    assert event.action == "accounts:company:registered" and event.ip == "10.0.0.9"
    mail = db.scalar(select(EmailMessage).where(EmailMessage.recipient == data["email"]))
    assert mail.kind == "confirm_email" and "http://exchange.test/confirm/" in mail.body


def test_wrong_check_digit_is_a_field_error(app, db):
    uscc = valid_uscc()
    bad = uscc[:17] + ("0" if uscc[17] != "0" else "1")
    with pytest.raises(ValidationError) as error:
        _register(app, db, uscc=bad)
    assert "uscc" in error.value.errors


def test_duplicate_uscc_is_refused(app, db):
    data = _register(app, db)
    with pytest.raises(ValidationError) as error:
        _register(app, db, uscc=data["uscc"])
    assert "uscc" in error.value.errors


def test_registering_a_known_email_creates_nothing_and_mails_the_owner(app, db):
    _company, user = make_company(db)
    before = db.scalar(select(func.count()).select_from(Company))
    _register(app, db, email=user.email)
    assert db.scalar(select(func.count()).select_from(Company)) == before
    mail = db.scalar(select(EmailMessage).where(EmailMessage.recipient == user.email))
    assert mail.kind == "account_exists"


def test_login_waits_for_email_confirmation(app, db):
    user = make_user(db, confirmed=False)
    with app.test_request_context(), pytest.raises(Forbidden):
        services.authenticate(db, user.email, PASSWORD, None, (5, 900))


def test_wrong_password_and_unknown_email_get_the_same_message(app, db):
    user = make_user(db)
    with app.test_request_context():
        with pytest.raises(ValidationError) as wrong:
            services.authenticate(db, user.email, "nope-nope-nope", None, (5, 900))
        with pytest.raises(ValidationError) as unknown:
            services.authenticate(db, "nobody@example.test", "nope-nope-nope", None, (5, 900))
    assert str(wrong.value.message) == str(unknown.value.message)


def test_a_burst_of_failed_logins_is_audited_once(app, db):
    user = make_user(db)
    with app.test_request_context():
        for _ in range(7):
            with pytest.raises(ValidationError):
                services.authenticate(db, user.email, "wrong-password", "10.1.1.1", (5, 900))
    assert (
        db.scalar(
            select(func.count()).select_from(LoginFailure).where(LoginFailure.email == user.email)
        )
        == 7
    )
    bursts = db.scalars(
        select(AuditEvent).where(
            AuditEvent.action == "accounts:login:failures_burst",
            AuditEvent.chain_key == f"user:{user.id}",
        )
    ).all()
    assert len(bursts) == 1


def test_password_reset_link_works_once(app, db):
    user = make_user(db)
    with app.test_request_context():
        services.request_password_reset(db, user.email, "en")
    mail = db.scalar(
        select(EmailMessage).where(
            EmailMessage.kind == "password_reset", EmailMessage.recipient == user.email
        )
    )
    token = mail.body.split("/password/reset/")[1].split()[0]
    with app.test_request_context():
        services.reset_password(db, token, "brand-new-password", None)
        assert services.authenticate(db, user.email, "brand-new-password", None, (5, 900))
        with pytest.raises(ValidationError):
            services.reset_password(db, token, "another-password", None)


def test_change_password_checks_the_current_one(app, db):
    company, user = make_company(db)
    with app.test_request_context():
        with pytest.raises(ValidationError) as error:
            services.change_password(db, actor_of(user, company), "wrong", "new-password-123")
        assert "current_password" in error.value.errors
        services.change_password(db, actor_of(user, company), PASSWORD, "new-password-123")
        assert services.authenticate(db, user.email, "new-password-123", None, (5, 900))


def test_admin_verifies_and_rejects_with_reason(app, db):
    company, _owner = make_company(db, verified=False)
    admin = make_user(db, admin=True)
    with app.test_request_context():
        with pytest.raises(ValidationError):
            companies.decide_verification(db, actor_of(admin), company.id, "rejected", " ", "en")
        companies.decide_verification(db, actor_of(admin), company.id, "verified", "", "en")
    assert company.verification_status is VerificationStatus.VERIFIED
    actions = db.scalars(
        select(AuditEvent.action).where(AuditEvent.chain_key == f"company:{company.id}")
    ).all()
    assert "accounts:company:verified" in actions


def test_only_admins_decide_verification(app, db):
    company, owner = make_company(db, verified=False)
    with app.test_request_context(), pytest.raises(Forbidden):
        companies.decide_verification(
            db, actor_of(owner, company), company.id, "verified", "", "en"
        )


def test_unverified_company_cannot_do_writes_that_matter(app, db):
    company, owner = make_company(db, verified=False)
    with (
        app.test_request_context(headers={"Accept-Language": "en"}),
        pytest.raises(Forbidden, match="not been verified"),
    ):
        companies.require_verified_company(db, actor_of(owner, company), "trade")


def test_viewer_cannot_trade_even_when_verified(app, db):
    company, viewer = make_company(db, role=Role.VIEWER)
    with app.test_request_context(), pytest.raises(Forbidden):
        companies.require_verified_company(db, actor_of(viewer, company, Role.VIEWER), "trade")


def test_invite_accept_change_role_and_remove_member(app, db):
    company, owner = make_company(db)
    actor = actor_of(owner, company)
    with app.test_request_context():
        companies.invite_member(db, actor, "Colleague@Example.test", "trader", "en")
        mail = db.scalar(
            select(EmailMessage).where(
                EmailMessage.kind == "invitation",
                EmailMessage.recipient == "colleague@example.test",
            )
        )
        token = mail.body.split("/invitations/")[1].split()[0]
        user = companies.accept_invitation(db, token, "Li Hua", "colleague-password", None, "en")
        assert user.membership.company_id == company.id and user.role == "trader"
        companies.change_role(db, actor, user.membership.id, "viewer")
        assert user.membership.role is Role.VIEWER
        companies.remove_member(db, actor, user.membership.id)
    db.expire_all()
    assert db.scalar(select(Membership).where(Membership.user_id == user.id)) is None
    assert db.get(User, user.id).is_active is False


def test_company_keeps_its_last_owner(app, db):
    company, owner = make_company(db)
    with app.test_request_context(), pytest.raises(Conflict):
        companies.change_role(db, actor_of(owner, company), owner.membership.id, "viewer")


def test_trader_cannot_manage_members(app, db):
    company, trader = make_company(db, role=Role.TRADER)
    with app.test_request_context(), pytest.raises(Forbidden):
        companies.invite_member(
            db, actor_of(trader, company, Role.TRADER), "x@example.test", "viewer", "en"
        )


def test_other_companys_member_cannot_be_removed(app, db):
    company_a, owner_a = make_company(db)
    _company_b, owner_b = make_company(db)
    from exchange.errors import NotFound

    with app.test_request_context(), pytest.raises(NotFound):
        companies.remove_member(db, actor_of(owner_a, company_a), owner_b.membership.id)
