"""Evidence files in a dispute and `audit verify` over the rows that carry legal weight: files
are checked by content before anything is stored, served only to the contract's parties and
administrators, recorded in the contract's chain, and an edited row fails the full verify."""

from __future__ import annotations

import datetime as dt
import io
from decimal import Decimal as D

import pytest
from sqlalchemy import func, select, text

from exchange.accounts.models import Membership
from exchange.accounts.rules import Role
from exchange.audit.services import verify
from exchange.contracts import deliveries, disputes, queries, signing
from exchange.contracts.models import Contract, Dispute, DisputeAttachment
from exchange.contracts.rules import ContractStatus
from exchange.errors import Conflict, Forbidden, NotFound, ValidationError
from exchange.files import stored_path
from exchange.reporting import oversight
from tests.support.builders import PASSWORD, actor_of, make_company, make_user
from tests.support.contracts import make_deal

PDF = b"%PDF-1.4\n1 0 obj<</Type/Catalog>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
EXE = b"MZ\x90\x00" + b"\x00" * 64


@pytest.fixture(autouse=True)
def _request(app):
    with app.test_request_context():
        yield


@pytest.fixture
def deal(db):
    deal = make_deal(db)
    signing.sign_contract(db, deal.seller_actor, deal.contract.id, PASSWORD)
    signing.sign_contract(db, deal.buyer_actor, deal.contract.id, PASSWORD)
    return deal


def _open(db, deal, tmp_path, *files, max_bytes=10_000_000):
    return disputes.open_dispute(
        db,
        deal.buyer_actor,
        deal.contract.id,
        "到货短重 3 吨",
        "磅单 #778",
        attachments=[disputes.Upload(name, io.BytesIO(data)) for name, data in files],
        upload_dir=tmp_path,
        max_bytes=max_bytes,
    )


def test_a_dispute_opens_with_an_evidence_file_recorded_in_the_chain(db, deal, tmp_path):
    dispute = _open(db, deal, tmp_path, ("../../磅单 778.pdf", PDF))
    (attachment,) = dispute.attachments
    assert attachment.filename == "磅单 778.pdf" and attachment.content_type == "application/pdf"
    assert stored_path(tmp_path, attachment.sha256).read_bytes() == PDF
    event = queries.history(db, deal.contract)[-1]
    assert event.action == "contracts:contract:disputed"
    assert attachment.sha256 in event.data
    assert queries.verify_records(db, deal.contract).ok


def test_the_other_party_adds_a_photo_and_both_parties_and_admins_can_open_it(db, deal, tmp_path):
    dispute = _open(db, deal, tmp_path, ("ticket.pdf", PDF))
    photo = disputes.add_attachment(
        db,
        deal.seller_actor,
        deal.contract.id,
        dispute.id,
        disputes.Upload("装车照片.jpg", io.BytesIO(PNG)),
        upload_dir=tmp_path,
    )
    assert photo.filename == "装车照片.jpg.png"  # the extension follows the content
    assert queries.history(db, deal.contract)[-1].action == "contracts:dispute:evidence_added"
    admin = actor_of(make_user(db, admin=True))
    for who in (deal.buyer_actor, deal.seller_actor, admin):
        found, path = disputes.open_attachment(
            db, who, deal.contract.id, dispute.id, photo.id, tmp_path
        )
        assert found.id == photo.id and path.read_bytes() == PNG
    other, other_owner = make_company(db)
    outsider = actor_of(other_owner, other)
    with pytest.raises(NotFound):
        disputes.open_attachment(db, outsider, deal.contract.id, dispute.id, photo.id, tmp_path)
    with pytest.raises(NotFound):  # right file, wrong dispute
        disputes.open_attachment(db, admin, deal.contract.id, dispute.id + 1, photo.id, tmp_path)
    assert queries.verify_records(db, deal.contract).ok


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        ("invoice.pdf", EXE, "PDF, PNG and JPEG"),
        ("empty.pdf", b"", "empty"),
        ("big.pdf", PDF + b"x" * 200, "larger than"),
    ],
)
def test_a_refused_file_leaves_no_dispute_and_no_file(db, deal, tmp_path, name, data, message):
    with pytest.raises(ValidationError) as info:
        _open(db, deal, tmp_path, (name, data), max_bytes=len(PDF) + 100)
    assert message in info.value.errors["attachment"][0]
    db.expire_all()
    assert db.get(Contract, deal.contract.id).status is ContractStatus.ACTIVE
    assert db.scalar(select(func.count()).select_from(Dispute)) == 0
    assert db.scalar(select(func.count()).select_from(DisputeAttachment)) == 0
    assert not any(tmp_path.iterdir())


def test_duplicates_decided_disputes_and_viewers_are_refused(db, deal, tmp_path):
    dispute = _open(db, deal, tmp_path, ("ticket.pdf", PDF))
    with pytest.raises(ValidationError, match="already attached"):
        disputes.add_attachment(
            db,
            deal.seller_actor,
            deal.contract.id,
            dispute.id,
            disputes.Upload("again.pdf", io.BytesIO(PDF)),
            upload_dir=tmp_path,
        )
    viewer_user = make_user(db)
    db.add(Membership(user_id=viewer_user.id, company_id=deal.seller.id, role=Role.VIEWER))
    db.flush()
    viewer = actor_of(viewer_user, deal.seller, Role.VIEWER)
    with pytest.raises(Forbidden):
        disputes.add_attachment(
            db,
            viewer,
            deal.contract.id,
            dispute.id,
            disputes.Upload("p.png", io.BytesIO(PNG)),
            upload_dir=tmp_path,
        )
    admin = actor_of(make_user(db, admin=True))
    disputes.resolve_dispute(db, admin, deal.contract.id, dispute.id, "resumed", "核对无误")
    with pytest.raises(Conflict):
        disputes.add_attachment(
            db,
            deal.buyer_actor,
            deal.contract.id,
            dispute.id,
            disputes.Upload("late.png", io.BytesIO(PNG)),
            upload_dir=tmp_path,
        )


@pytest.mark.parametrize(
    ("sql", "what"),
    [
        ("UPDATE contract_signatures SET ip = '10.6.6.6' WHERE contract_id = :id", "signature"),
        (
            "UPDATE contract_dispute_attachments SET sha256 = :fake WHERE dispute_id IN "
            "(SELECT id FROM contract_disputes WHERE contract_id = :id)",
            "dispute file",
        ),
        ("DELETE FROM contract_dispute_attachments", "missing"),
    ],
)
def test_the_full_audit_verify_finds_an_edited_or_deleted_row(db, deal, tmp_path, sql, what):
    _open(db, deal, tmp_path, ("ticket.pdf", PDF))
    assert not [b for b in verify(db).breaks if b.chain_key == f"contract:{deal.contract.id}"]
    db.execute(text(sql), {"id": deal.contract.id, "fake": "0" * 64})
    db.expire_all()
    report = verify(db)
    assert not report.ok
    problems = [b.reason for b in report.breaks if b.chain_key == f"contract:{deal.contract.id}"]
    assert problems and what in problems[0], problems


def test_a_suspended_company_still_performs_its_contracts(app, db, deal, tmp_path):
    """Suspension freezes bids and lots; the contracts a company already has go on."""
    admin = actor_of(make_user(db, admin=True))
    oversight.suspend_company(db, admin, deal.seller.id, "forged assay", "en")
    delivery = deliveries.record_dispatch(
        db,
        deal.seller_actor,
        deal.contract.id,
        {
            "dispatched_on": dt.date.today(),
            "carrier": "顺达物流",
            "vehicle_plate": "鲁M1",
            "manifest_no": "MF-1",
            "gross_t": D("49"),
            "tare_t": D("15"),
        },
    )
    dispute = _open(db, deal, tmp_path, ("ticket.pdf", PDF))
    disputes.add_attachment(
        db,
        deal.seller_actor,
        deal.contract.id,
        dispute.id,
        disputes.Upload("p.png", io.BytesIO(PNG)),
        upload_dir=tmp_path,
    )
    assert delivery.id and len(dispute.attachments) == 2
