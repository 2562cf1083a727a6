"""JSON API of the accounts context: the caller, companies and sites, the caller's tokens."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView
from flask_babel import gettext as _
from sqlalchemy import select

from exchange.accounts import companies, tokens
from exchange.accounts.models import ApiToken, Company
from exchange.accounts.schemas import (
    CallerSchema,
    CompanyPublicSchema,
    CompanySchema,
    SiteCreateSchema,
    SiteSchema,
    TokenFilterSchema,
    TokenSchema,
)
from exchange.apiplatform import ApiBlueprint, api_actor, current_caller, paginate_query
from exchange.db import commit, get_session
from exchange.errors import NotFound

companies_blp = ApiBlueprint(
    "companies",
    __name__,
    url_prefix="/companies",
    description="Your company with its sites and members, and public company profiles.",
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
