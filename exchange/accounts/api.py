"""JSON API of the accounts context: the caller, companies with their sites and members,
administrators' company verification, the caller's tokens."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView
from flask_babel import get_locale
from flask_babel import gettext as _
from sqlalchemy import select

from exchange.accounts import companies, tokens
from exchange.accounts.models import ApiToken, Company, Invitation, Membership
from exchange.accounts.schemas import (
    CallerSchema,
    CompanyPublicSchema,
    CompanySchema,
    InvitationCreateSchema,
    InvitationSchema,
    MemberRoleSchema,
    MemberSchema,
    SiteCreateSchema,
    SiteSchema,
    TokenFilterSchema,
    TokenSchema,
    VerificationDecisionSchema,
    VerificationFilterSchema,
)
from exchange.apiplatform import ApiBlueprint, api_actor, current_caller, paginate_query
from exchange.db import commit, get_session
from exchange.errors import NotFound

companies_blp = ApiBlueprint(
    "companies",
    __name__,
    url_prefix="/companies",
    description="Your company with its sites, members and invitations; public company "
    "profiles; the verification queue and decisions (administrators).",
)
tokens_blp = ApiBlueprint(
    "tokens",
    __name__,
    url_prefix="",
    description="Who a token acts as, and your API tokens (create them in the web app).",
)
blueprints = [companies_blp, tokens_blp]


def _own_company() -> Company:
    actor = api_actor()
    company = get_session().get(Company, actor.company_id) if actor.company_id else None
    if company is None:
        raise NotFound(_("You belong to no company."))
    return company


@companies_blp.route("/me")
class OwnCompany(MethodView):
    @companies_blp.auth()
    @companies_blp.response(200, CompanySchema)
    def get(self) -> Company:
        """Your company, its sites and its members"""
        return _own_company()


@companies_blp.route("/me/sites")
class OwnSites(MethodView):
    @companies_blp.auth()
    @companies_blp.idempotent
    @companies_blp.arguments(SiteCreateSchema)
    @companies_blp.response(201, SiteSchema)
    def post(self, data: dict[str, Any]) -> Any:
        """Add a plant, storage yard or delivery site (owners)"""
        session = get_session()
        site = companies.add_site(session, api_actor(), data)
        commit(session)
        return site


@companies_blp.route("/me/sites/<id:site_id>")
class OwnSite(MethodView):
    @companies_blp.auth()
    @companies_blp.response(204)
    @companies_blp.alt_response(404, response="NOT_FOUND")
    @companies_blp.alt_response(409, response="CONFLICT")
    def delete(self, site_id: int) -> None:
        """Remove a site (owners; a company keeps at least one)"""
        session = get_session()
        companies.remove_site(session, api_actor(), site_id)
        commit(session)


@companies_blp.route("/me/members")
class OwnMembers(MethodView):
    @companies_blp.auth()
    @companies_blp.response(200, MemberSchema(many=True))
    @companies_blp.paginate(page_size=50)
    def get(self, pagination_parameters: Any) -> list[Membership]:
        """Your company's members with their roles"""
        query = companies.members_query(api_actor())
        return paginate_query(get_session(), query, pagination_parameters)


@companies_blp.route("/me/members/<id:membership_id>")
class OwnMember(MethodView):
    @companies_blp.auth()
    @companies_blp.arguments(MemberRoleSchema)
    @companies_blp.response(200, MemberSchema)
    @companies_blp.alt_response(404, response="NOT_FOUND")
    @companies_blp.alt_response(409, response="CONFLICT")
    def patch(self, data: dict[str, Any], membership_id: int) -> Membership:
        """Give a member another role (owners; the company keeps at least one owner)"""
        session = get_session()
        membership = companies.change_role(session, api_actor(), membership_id, data["role"])
        commit(session)
        return membership

    @companies_blp.auth()
    @companies_blp.response(204)
    @companies_blp.alt_response(404, response="NOT_FOUND")
    @companies_blp.alt_response(409, response="CONFLICT")
    def delete(self, membership_id: int) -> None:
        """Remove a member; their account is deactivated (owners; not yourself, not the last
        owner)"""
        session = get_session()
        companies.remove_member(session, api_actor(), membership_id)
        commit(session)


@companies_blp.route("/me/invitations")
class OwnInvitations(MethodView):
    @companies_blp.auth()
    @companies_blp.response(200, InvitationSchema(many=True))
    @companies_blp.paginate(page_size=50)
    def get(self, pagination_parameters: Any) -> list[Invitation]:
        """Invitations still open, newest first (owners)"""
        query = companies.open_invitations_query(api_actor())
        return paginate_query(get_session(), query, pagination_parameters)

    @companies_blp.auth()
    @companies_blp.idempotent
    @companies_blp.arguments(InvitationCreateSchema)
    @companies_blp.response(201, InvitationSchema)
    @companies_blp.alt_response(422, response="UNPROCESSABLE_ENTITY")
    def post(self, data: dict[str, Any]) -> Invitation:
        """Invite a colleague by e-mail with a role (owners); the link is mailed to them"""
        session = get_session()
        invitation = companies.invite_member(
            session, api_actor(), data["email"], data["role"], str(get_locale())
        )
        commit(session)
        return invitation


@companies_blp.route("/me/invitations/<id:invitation_id>")
class OwnInvitation(MethodView):
    @companies_blp.auth()
    @companies_blp.response(204)
    @companies_blp.alt_response(404, response="NOT_FOUND")
    @companies_blp.alt_response(409, response="CONFLICT")
    def delete(self, invitation_id: int) -> None:
        """Revoke an open invitation; its link stops working (owners)"""
        session = get_session()
        companies.revoke_invitation(session, api_actor(), invitation_id)
        commit(session)


@companies_blp.route("")
class VerificationQueue(MethodView):
    @companies_blp.auth()
    @companies_blp.arguments(VerificationFilterSchema, location="query")
    @companies_blp.response(200, CompanySchema(many=True))
    @companies_blp.paginate(page_size=50)
    def get(self, filters: dict[str, Any], pagination_parameters: Any) -> list[Company]:
        """Registered companies for verification, oldest first (administrators)"""
        companies.require_admin(api_actor())
        query = companies.verification_queue_query(filters.get("status"), filters.get("q"))
        return paginate_query(get_session(), query, pagination_parameters)


@companies_blp.route("/<id:company_id>/verification")
class Verification(MethodView):
    @companies_blp.auth()
    @companies_blp.arguments(VerificationDecisionSchema)
    @companies_blp.response(200, CompanySchema)
    @companies_blp.alt_response(404, response="NOT_FOUND")
    @companies_blp.alt_response(409, response="CONFLICT")
    @companies_blp.alt_response(422, response="UNPROCESSABLE_ENTITY")
    def post(self, data: dict[str, Any], company_id: int) -> Company:
        """Verify or reject a company with a reason (administrators; its owners are e-mailed)"""
        session = get_session()
        company = companies.decide_verification(
            session, api_actor(), company_id, data["decision"], data["reason"], str(get_locale())
        )
        commit(session)
        return company


@companies_blp.route("/<id:company_id>")
class PublicCompany(MethodView):
    @companies_blp.public
    @companies_blp.response(200, CompanyPublicSchema)
    @companies_blp.alt_response(404, response="NOT_FOUND")
    def get(self, company_id: int) -> Company:
        """A company's public profile"""
        company = get_session().get(Company, company_id)
        if company is None:
            raise NotFound(_("No such company."))
        return company


@tokens_blp.route("/me")
class Me(MethodView):
    @tokens_blp.auth()
    @tokens_blp.response(200, CallerSchema)
    def get(self) -> dict[str, Any]:
        """Who this token acts as"""
        caller = current_caller()
        token = caller.token
        assert token is not None
        user = token.user
        return {
            "user_id": user.id,
            "display_name": user.display_name,
            "email": user.email,
            "is_admin": user.is_admin,
            "company_id": caller.actor.company_id,
            "role": caller.actor.role,
            "token_id": token.id,
            "token_scope": token.scope.value,
        }


@tokens_blp.route("/tokens")
class Tokens(MethodView):
    @tokens_blp.auth()
    @tokens_blp.arguments(TokenFilterSchema, location="query")
    @tokens_blp.response(200, TokenSchema(many=True))
    @tokens_blp.paginate()
    def get(self, filters: dict[str, Any], pagination_parameters: Any) -> list[ApiToken]:
        """Your API tokens, active first (never their secrets)"""
        query = select(ApiToken).where(ApiToken.user_id == api_actor().user_id)
        if filters.get("active") is True:
            query = query.where(ApiToken.revoked_at.is_(None))
        elif filters.get("active") is False:
            query = query.where(ApiToken.revoked_at.is_not(None))
        query = query.order_by(ApiToken.revoked_at.is_not(None), ApiToken.id.desc())
        return paginate_query(get_session(), query, pagination_parameters)


@tokens_blp.route("/tokens/<id:token_id>")
class TokenItem(MethodView):
    @tokens_blp.auth()
    @tokens_blp.response(200, TokenSchema)
    @tokens_blp.alt_response(404, response="NOT_FOUND")
    @tokens_blp.alt_response(409, response="CONFLICT")
    def delete(self, token_id: int) -> ApiToken:
        """Revoke one of your tokens; it is refused from the next request on"""
        session = get_session()
        token = tokens.revoke_token(session, api_actor(), token_id)
        commit(session)
        return token
