"""Every /api/v1 operation × anonymous / read token / viewer / other company / owner / admin."""

import pytest
from sqlalchemy import select

from exchange.accounts import companies
from exchange.accounts.models import ApiToken, Membership, Site
from exchange.accounts.rules import Role
from exchange.apiplatform.blueprint import ACCESS_ATTRIBUTE
from tests.support.api import bearer, make_token
from tests.support.builders import actor_of, make_company, make_user

ANON, READ, VIEWER, OTHER, OWN, ADMIN, ADMIN_READ = (
    "anonymous",
    "read token",
    "viewer",
    "other company",
    "own owner",
    "admin",
    "admin read token",
)
PERSONAS = [ANON, READ, VIEWER, OTHER, OWN, ADMIN, ADMIN_READ]


@pytest.fixture()
def world(app, db):
    own, owner = make_company(db)
    viewer = make_user(db)
    membership = Membership(user_id=viewer.id, company_id=own.id, role=Role.VIEWER)
    db.add(membership)
    extra_site = Site(
        company_id=own.id, name="Yard 2", province="37", city="x", latitude=37, longitude=118
    )
    db.add(extra_site)
    _other, other_owner = make_company(db)
    pending, _pending_owner = make_company(db, verified=False)
    admin = make_user(db, admin=True)
    db.flush()
    with app.test_request_context():
        invitation = companies.invite_member(
            db, actor_of(owner, own), "colleague@example.com", "trader", "en"
        )
    tokens = {
        READ: make_token(db, owner, "read"),
        VIEWER: make_token(db, viewer),
        OTHER: make_token(db, other_owner),
        OWN: make_token(db, owner),
        ADMIN: make_token(db, admin),
        ADMIN_READ: make_token(db, admin, "read"),
    }
    make_token(db, owner, name="spare")
    spare_id = db.scalar(
        select(ApiToken.id).where(ApiToken.user_id == owner.id, ApiToken.name == "spare")
    )
    return {
        "own": own,
        "site": extra_site,
        "tokens": tokens,
        "spare": spare_id,
        "member": membership.id,
        "invitation": invitation.id,
        "pending": pending.id,
    }


SITE = {"name": "Y", "province": "37", "city": "c", "latitude": "36.5", "longitude": "118.5"}

#: Writes only an owner of a company may make (in their own company).
OWNERS_ONLY = {ANON: 401, READ: 403, VIEWER: 403, OTHER: 404, ADMIN: 403, ADMIN_READ: 403}
#: Reads and writes for administrators only.
ADMINS_READ = {ANON: 401, READ: 403, VIEWER: 403, OTHER: 403, OWN: 403}
ADMINS_WRITE = {**ADMINS_READ, ADMIN_READ: 403}

# (method, path, body, {persona: status})
MATRIX = [
    ("GET", "/api/v1/me", None, {ANON: 401}),
    ("GET", "/api/v1/companies/me", None, {ANON: 401, ADMIN: 404, ADMIN_READ: 404}),
    (
        "POST",
        "/api/v1/companies/me/sites",
        SITE,
        {
            ANON: 401,
            READ: 403,
            VIEWER: 403,
            OTHER: 201,
            OWN: 201,
            ADMIN: 403,
            ADMIN_READ: 403,
        },
    ),
    (
        "DELETE",
        "/api/v1/companies/me/sites/{site}",
        None,
        {ANON: 401, READ: 403, VIEWER: 403, OTHER: 404, OWN: 204, ADMIN: 403, ADMIN_READ: 403},
    ),
    ("GET", "/api/v1/companies/me/members", None, {ANON: 401, ADMIN: 403, ADMIN_READ: 403}),
    ("PATCH", "/api/v1/companies/me/members/{member}", {"role": "trader"}, OWNERS_ONLY),
    ("DELETE", "/api/v1/companies/me/members/{member}", None, OWNERS_ONLY),
    (
        "GET",
        "/api/v1/companies/me/invitations",
        None,
        {ANON: 401, VIEWER: 403, ADMIN: 403, ADMIN_READ: 403},
    ),
    (
        "POST",
        "/api/v1/companies/me/invitations",
        {"email": "new@example.com", "role": "viewer"},
        {**OWNERS_ONLY, OTHER: 201},
    ),
    ("DELETE", "/api/v1/companies/me/invitations/{invitation}", None, OWNERS_ONLY),
    ("GET", "/api/v1/companies/{own}", None, {}),
    ("GET", "/api/v1/companies?status=pending", None, ADMINS_READ),
    (
        "POST",
        "/api/v1/companies/{pending}/verification",
        {"decision": "verified", "reason": "Licence checked."},
        ADMINS_WRITE,
    ),
    ("GET", "/api/v1/tokens", None, {ANON: 401}),
    (
        "DELETE",
        "/api/v1/tokens/{spare}",
        None,
        {ANON: 401, READ: 403, VIEWER: 404, OTHER: 404, OWN: 200, ADMIN: 404, ADMIN_READ: 403},
    ),
    ("GET", "/api/v1/generation", None, {ANON: 401, ADMIN: 403, ADMIN_READ: 403}),
    (
        "POST",
        "/api/v1/generation",
        lambda world: {"site_id": world["site"].id, "month": "2026-01-01", "tonnes": "1200.500"},
        {ANON: 401, READ: 403, VIEWER: 403, OTHER: 422, ADMIN: 403, ADMIN_READ: 403},
    ),
    (
        "GET",
        "/api/v1/ledger?start=2026-01&end=2026-06",
        None,
        {ANON: 401, ADMIN: 403, ADMIN_READ: 403},
    ),
    ("POST", "/api/v1/companies/{pending}/suspension", {"reason": "Forged assay."}, ADMINS_WRITE),
    (
        "POST",
        "/api/v1/companies/{own}/reinstatement",
        {"reason": "Cleared."},
        {**ADMINS_WRITE, ADMIN: 409},
    ),
    (
        "GET",
        "/api/v1/audit/events",
        None,
        {ANON: 401, READ: 403, VIEWER: 403, OTHER: 403, OWN: 403},
    ),
    (
        "POST",
        "/api/v1/audit/verify",
        None,
        {ANON: 401, READ: 403, VIEWER: 403, OTHER: 403, OWN: 403},
    ),
]


@pytest.mark.parametrize("persona", PERSONAS)
@pytest.mark.parametrize(
    ("method", "path", "body", "statuses"), MATRIX, ids=[f"{m[0]} {m[1]}" for m in MATRIX]
)
def test_api_authorization_matrix(client, world, persona, method, path, body, statuses):
    url = path.format(
        own=world["own"].id,
        site=world["site"].id,
        spare=world["spare"],
        member=world["member"],
        invitation=world["invitation"],
        pending=world["pending"],
    )
    headers = bearer(world["tokens"][persona]) if persona != ANON else {}
    payload = body(world) if callable(body) else body
    response = client.open(url, method=method, json=payload, headers=headers)
    assert response.status_code == statuses.get(persona, _success(method, path)), (
        response.get_json()
    )


def _success(method, path):
    """The status of a request that is allowed."""
    if method == "DELETE":
        return 200 if "tokens" in path else 204
    if method == "POST" and path.endswith(("/sites", "/invitations")):
        return 201
    return 200


OWN_BLUEPRINTS = (
    "api_companies.",
    "api_tokens.",
    "api_audit.",
    "api_generation.",
    "api_ledger.",
    "api_oversight.",
)


def _api_operations(app):
    """(method, rule, view function) of every /api/v1 operation served by an ApiBlueprint."""
    for rule in app.url_map.iter_rules():
        view = app.view_functions[rule.endpoint]
        if not rule.rule.startswith("/api/v1/") or not hasattr(view, "view_class"):
            continue
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            yield method, rule, getattr(view.view_class, method.lower())


def test_every_api_operation_declares_its_access(app):
    operations = list(_api_operations(app))
    assert len(operations) >= 9
    for method, rule, func in operations:
        assert getattr(func, ACCESS_ATTRIBUTE, None), f"{method} {rule.rule}"


def test_every_accounts_and_audit_operation_is_in_the_matrix(app):
    """A new endpoint of these blueprints without a row in MATRIX fails here."""
    served = {
        (method, rule.rule.replace("<id:", "{").replace(">", "}"))
        for method, rule, _func in _api_operations(app)
        if rule.endpoint.startswith(OWN_BLUEPRINTS)
    }
    names = {
        "{own}": "{company_id}",
        "{pending}": "{company_id}",
        "{site}": "{site_id}",
        "{spare}": "{token_id}",
        "{member}": "{membership_id}",
        "{invitation}": "{invitation_id}",
    }
    in_matrix = set()
    for method, path, _body, _statuses in MATRIX:
        for short, long in names.items():
            path = path.replace(short, long)
        in_matrix.add((method, path.split("?")[0]))
    assert served == in_matrix
