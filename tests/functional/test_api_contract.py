"""The API against its own OpenAPI document, fuzzed by schemathesis through the WSGI app.

Every operation, anonymously and with an owner's and an administrator's read-write token: no
5xx, every response matches its documented schema (status, headers, body), and no request the
document calls invalid is accepted. Also: the document itself is valid OpenAPI 3.0.

schemathesis's ``positive_data_acceptance`` check is left out on purpose: a request can fit the
document and still break a business rule (a site outside China, a bid under the increment), and
the answer to that is a documented 422, not a 2xx.
"""

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import positive_data_acceptance

from tests.support.api import bearer, make_token
from tests.support.builders import make_company, make_user

PERSONAS = ("anonymous", "owner", "admin")
EXAMPLES = {"positive": 20, "negative": 12}


def _headers(db, persona):
    if persona == "anonymous":
        return {}
    if persona == "admin":
        return bearer(make_token(db, make_user(db, admin=True)))
    _company, owner = make_company(db)
    return bearer(make_token(db, owner))


@pytest.mark.parametrize("mode", sorted(EXAMPLES))
def test_api_honours_its_openapi_document(app, db, mode):
    """Positive cases must be answered within the document (and never 5xx); negative cases
    (bodies, parameters or headers the document forbids) must be refused."""
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    headers = {persona: _headers(db, persona) for persona in PERSONAS}
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 9

    for operation in operations:

        @given(case=operation.as_strategy(generation_mode=GenerationMode(mode)))
        @settings(
            max_examples=EXAMPLES[mode],
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
            phases=[Phase.explicit, Phase.generate],
        )
        def run(case):
            for persona in PERSONAS:
                case.call_and_validate(
                    headers=headers[persona], excluded_checks=[positive_data_acceptance]
                )

        run()


def test_openapi_document_is_valid_and_complete(app, client):
    document = client.get("/api/v1/openapi.json").get_json()
    schemathesis.openapi.from_dict(document).validate()
    assert document["openapi"].startswith("3.0")
    assert "bearerAuth" in document["components"]["securitySchemes"]
    for path, operations in document["paths"].items():
        assert path.startswith("/api/v1/")
        for method, operation in operations.items():
            if method == "parameters":
                continue
            where = f"{method.upper()} {path}"
            assert operation.get("security"), where
            assert operation.get("summary"), where
            assert operation.get("tags"), where
            assert "401" in operation["responses"] and "429" in operation["responses"], where
            success = [c for c in operation["responses"] if c.startswith("2")]
            assert success, where
