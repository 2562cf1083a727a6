"""``Idempotency-Key`` for POSTs that create: a retried request returns the first response.

How it works, per (user, key):

1. A stored, finished record with the same request fingerprint → its response is replayed
   (``Idempotent-Replayed: true``), nothing runs again. Another fingerprint → 422.
2. No record → one is inserted *before* the view runs, in the same transaction as the view's
   work, so the view's single commit stores "this key acted" atomically with the effect. A
   concurrent twin collides on the unique (user_id, key) and gets the replay (or 409 while the
   first is still running). After the view returns a 2xx, its response is stored and committed.
3. A view that raises (or answers 4xx/5xx) acted on nothing: the record goes away with the
   rollback, so a corrected retry with the same key runs.

If the process dies between the view's commit and storing the response, the key answers 409
saying the request was carried out; the client then reads the resource instead of retrying.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Callable
from typing import Any

from flask import Response, current_app, request
from flask_babel import gettext as _
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from exchange.apiplatform.models import IdempotencyKey
from exchange.db import commit, get_session, utcnow
from exchange.errors import Conflict, ValidationError

HEADER = "Idempotency-Key"
REPLAY_HEADER = "Idempotent-Replayed"
KEY_MAX_LENGTH = 200


def fingerprint() -> str:
    """SHA-256 over the method, the path with its query and the canonical JSON body."""
    body = request.get_json(silent=True)
    if body is not None:
        payload = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        raw = payload.encode()
    else:
        raw = request.get_data(cache=True)
    digest = hashlib.sha256()
    digest.update(request.method.encode() + b"\n")
    digest.update(request.full_path.rstrip("?").encode() + b"\n")
    digest.update(raw)
    return digest.hexdigest()


def _find(session: Session, user_id: int, key: str) -> IdempotencyKey | None:
    return session.scalar(
        select(IdempotencyKey).where(IdempotencyKey.user_id == user_id, IdempotencyKey.key == key)
    )


def _replay(record: IdempotencyKey, print_: str) -> Response:
    if record.fingerprint != print_:
        message = _(
            "This Idempotency-Key was already used for a different request. "
            "Use a new key for a new request."
        )
        raise ValidationError(message, {HEADER: [message]})
    if record.status_code is None:
        raise Conflict(
            _(
                "A request with this Idempotency-Key was received and is still running, or "
                "was carried out without its answer being kept. Look the result up before "
                "retrying with a new key."
            )
        )
    response = current_app.response_class(
        record.response_body or "",
        status=record.status_code,
        content_type=record.content_type or "application/json",
    )
    if record.location:
        response.headers["Location"] = record.location
    response.headers[REPLAY_HEADER] = "true"
    return response


def run_idempotent(user_id: int | None, key: str | None, call: Callable[[], Any]) -> Any:
    """Run ``call`` (the view) at most once per (user, key); see the module docstring."""
    if key is None or user_id is None:
        return call()
    session = get_session()
    print_ = fingerprint()
    existing = _find(session, user_id, key)
    if existing is not None:
        return _replay(existing, print_)
    record = IdempotencyKey(
        user_id=user_id,
        key=key,
        method=request.method,
        path=request.path[:500],
        fingerprint=print_,
        created_at=utcnow(),
    )
    try:
        with session.begin_nested():
            session.add(record)
    except IntegrityError:
        # A concurrent twin inserted the key first and has committed by now.
        twin = _find(session, user_id, key)
        if twin is None:  # pragma: no cover - the twin rolled back; let the client retry
            raise Conflict(_("A request with this Idempotency-Key is running. Retry.")) from None
        return _replay(twin, print_)

    response = current_app.make_response(call())
    record_id = record.id
    if 200 <= response.status_code < 300:
        record.status_code = response.status_code
        record.response_body = response.get_data(as_text=True)
        record.content_type = response.content_type
        record.location = response.headers.get("Location")
        record.completed_at = utcnow()
        session.add(record)
    else:
        session.rollback()
        session.execute(delete(IdempotencyKey).where(IdempotencyKey.id == record_id))
    commit(session)
    return response


def purge_expired(session: Session, older_than: dt.timedelta) -> int:
    """Delete keys older than ``older_than`` (a periodic job); returns how many."""
    result = session.execute(
        delete(IdempotencyKey).where(IdempotencyKey.created_at < utcnow() - older_than)
    )
    return int(getattr(result, "rowcount", 0) or 0)
