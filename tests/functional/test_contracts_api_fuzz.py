"""The contracts API fuzzed by schemathesis against real contracts.

The whole-API contract test draws path ids at random, so it almost never reaches a contract
that exists. Here every contracts operation gets the ids of real contracts (one in delivery,
one disputed) and bodies generated from the document, sent by the seller, the buyer and an
administrator: no 5xx, and every answer (2xx or refusal) matches the document.
"""

import io

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import positive_data_acceptance

from exchange.contracts import deliveries, disputes, signing
from tests.support.api import bearer, make_token
from tests.support.builders import PASSWORD, make_user
from tests.support.contracts import make_deal

EXAMPLES = 20
#: The PDF takes nothing to fuzz but its path, and each rendering embeds a CJK font subset
#: (about three seconds): one example checks its status and content type against the document.
PDF_EXAMPLES = 1
PDF = b"%PDF-1.4\n1 0 obj<</Type/Catalog>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"


def _in_delivery(db):
    deal = make_deal(db)
    signing.sign_contract(db, deal.seller_actor, deal.contract.id, PASSWORD)
    signing.sign_contract(db, deal.buyer_actor, deal.contract.id, PASSWORD)
    delivery = deliveries.record_dispatch(
        db,
        deal.seller_actor,
        deal.contract.id,
        {
            "dispatched_on": deal.contract.created_at.date(),
            "carrier": "顺达物流",
            "vehicle_plate": "鲁M1",
            "manifest_no": "MF-1",
            "gross_t": 49,
            "tare_t": 15,
        },
    )
    return deal, delivery


@pytest.fixture()
def contracts(app, db):
    with app.test_request_context():
        delivering, delivery = _in_delivery(db)
        disputed, disputed_delivery = _in_delivery(db)
        dispute = disputes.open_dispute(
            db,
            disputed.buyer_actor,
            disputed.contract.id,
            "短重",
            "",
            disputed_delivery.id,
            attachments=[disputes.Upload("磅单.pdf", io.BytesIO(PDF))],
            upload_dir=app.config["UPLOAD_DIR"],
        )
    admin = make_user(db, admin=True)
    return {
        "headers": [
            bearer(make_token(db, delivering.seller_owner)),
            bearer(make_token(db, delivering.buyer_owner)),
            bearer(make_token(db, admin)),
            bearer(make_token(db, disputed.seller_owner)),
            bearer(make_token(db, disputed.buyer_owner)),
        ],
        "in_delivery": {"contract_id": delivering.contract.id, "delivery_id": delivery.id},
        "disputed": {
            "contract_id": disputed.contract.id,
            "delivery_id": disputed_delivery.id,
            "dispute_id": dispute.id,
            "attachment_id": dispute.attachments[0].id,
        },
    }


def test_contracts_operations_on_real_contracts_honour_the_document(app, db, contracts):
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app).include(tag="contracts")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 14

    for operation in operations:
        stage = "disputed" if "{dispute_id}" in operation.path else "in_delivery"
        ids = contracts[stage]
        headers = contracts["headers"][:3] if stage == "in_delivery" else contracts["headers"][2:]

        @given(case=operation.as_strategy(generation_mode=GenerationMode.POSITIVE))
        @settings(
            max_examples=PDF_EXAMPLES if operation.path.endswith("/pdf") else EXAMPLES,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
            phases=[Phase.explicit, Phase.generate],
        )
        def run(case):
            case.path_parameters = {name: ids[name] for name in case.path_parameters if name in ids}
            for persona_headers in headers:
                case.call_and_validate(
                    headers=persona_headers, excluded_checks=[positive_data_acceptance]
                )

        run()
