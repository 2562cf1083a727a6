"""Certificates and photos of a lot: accepted by content, stored by SHA-256, served with checks.

Files live outside ``static/`` under ``UPLOAD_DIR`` as ``<sha[:2]>/<sha>``, with no extension and
never under the uploader's name, so nothing uploaded can be reached, executed or rendered by the
web server directly. The only way out is ``open_certificate``, which checks who is asking.
"""

from __future__ import annotations

from pathlib import Path
from typing import BinaryIO

from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from exchange.accounts.models import Company
from exchange.actor import Actor
from exchange.audit.services import record_event
from exchange.errors import Conflict, Forbidden, NotFound, ValidationError
from exchange.files import UploadRefused, check_upload, stored_path, write_once
from exchange.listings import rules
from exchange.listings.models import Certificate, Lot
from exchange.listings.services import can_view, load_own_lot

KINDS = ("certificate", "photo")
MAX_FILES_PER_LOT = 20
FILE_FIELD = "file"


def can_see_assay(session: Session, actor: Actor, lot: Lot) -> bool:
    """Assays and certificates: the producer, administrators and verified companies (for a
    lot they can see at all). Anonymous visitors and unverified companies see neither."""
    if actor.is_admin or (actor.company_id is not None and actor.company_id == lot.producer_id):
        return True
    if actor.company_id is None or not can_view(actor, lot):
        return False
    company = session.get(Company, actor.company_id)
    return company is not None and company.is_verified


def _refuse(message: object) -> ValidationError:
    return ValidationError(str(message), {FILE_FIELD: [str(message)]})


def add_certificate(
    session: Session,
    actor: Actor,
    lot_id: int,
    *,
    kind: str,
    filename: str | None,
    stream: BinaryIO,
    upload_dir: str | Path,
    max_bytes: int,
) -> Certificate:
    """Attach a certificate (PDF or image) or a photo (image) to the producer's own lot.

    The type is decided by the file's first bytes, never by its name or the browser's claim;
    the stored name is the SHA-256 and the shown name is sanitised. Everything is checked
    before the file is written, so a refusal leaves nothing behind. Raises ValidationError
    (``file``) for a wrong type, an empty or oversize file, a duplicate or too many files.
    """
    lot = load_own_lot(session, actor, lot_id)
    if lot.status not in rules.EDITABLE and lot.status not in rules.AMENDABLE:
        raise Conflict(_l("Files can no longer be added to this lot."))
    if kind not in KINDS:
        raise _refuse(_l("Choose certificate or photo."))
    try:
        checked = check_upload(stream, filename, max_bytes, fallback=kind)
    except UploadRefused as refused:
        raise _refuse(refused.message) from None
    if kind == "photo" and not checked.content_type.startswith("image/"):
        raise _refuse(_l("A photo must be a PNG or JPEG image."))
    digest = checked.sha256
    count = session.scalar(
        select(func.count()).select_from(Certificate).where(Certificate.lot_id == lot.id)
    )
    if (count or 0) >= MAX_FILES_PER_LOT:
        raise _refuse(_l("A lot holds at most %(n)d files.", n=MAX_FILES_PER_LOT))
    if session.scalar(
        select(Certificate.id).where(Certificate.lot_id == lot.id, Certificate.sha256 == digest)
    ):
        raise _refuse(_l("This file is already attached to the lot."))
    write_once(stored_path(upload_dir, digest), checked.data)
    certificate = Certificate(
        lot_id=lot.id,
        kind=kind,
        filename=checked.filename,
        content_type=checked.content_type,
        size_bytes=len(checked.data),
        sha256=digest,
        uploaded_by_id=actor.user_id,
    )
    session.add(certificate)
    session.flush()
    record_event(
        session,
        actor,
        "listings:certificate:added",
        "lot",
        lot.id,
        {
            "certificate_id": certificate.id,
            "kind": kind,
            "filename": checked.filename,
            "content_type": checked.content_type,
            "size_bytes": len(checked.data),
            "sha256": digest,
        },
    )
    return certificate


def remove_certificate(session: Session, actor: Actor, lot_id: int, certificate_id: int) -> None:
    """Detach a file from the producer's own lot (the stored content may serve other lots)."""
    lot = load_own_lot(session, actor, lot_id)
    if lot.status not in rules.EDITABLE and lot.status not in rules.AMENDABLE:
        raise Conflict(_l("Files can no longer be removed from this lot."))
    certificate = session.get(Certificate, certificate_id)
    if certificate is None or certificate.lot_id != lot.id:
        raise NotFound(_l("No such file."))
    session.delete(certificate)
    record_event(
        session,
        actor,
        "listings:certificate:removed",
        "lot",
        lot.id,
        {"certificate_id": certificate_id, "filename": certificate.filename},
    )


def open_certificate(
    session: Session, actor: Actor, lot_id: int, certificate_id: int, upload_dir: str | Path
) -> tuple[Certificate, Path]:
    """The certificate and its stored file, if ``actor`` may see the lot's assay documents.

    NotFound when the lot or file does not exist or the lot is not visible to the actor;
    Forbidden when the lot is visible but its documents are not (anonymous, unverified).
    """
    lot = session.get(Lot, lot_id)
    certificate = session.get(Certificate, certificate_id)
    if lot is None or certificate is None or certificate.lot_id != lot.id:
        raise NotFound(_l("No such file."))
    if not can_view(actor, lot):
        raise NotFound(_l("No such file."))
    if not can_see_assay(session, actor, lot):
        raise Forbidden(
            _l("Certificates are shown to verified companies. Log in with a verified company.")
        )
    path = stored_path(upload_dir, certificate.sha256)
    if not path.is_file():
        raise NotFound(_l("The file is missing from storage; tell the administrators."))
    return certificate, path
