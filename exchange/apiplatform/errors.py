"""The API's one error shape: ``{"code", "status", "message", "errors"}``.

``code`` is the HTTP status, ``status`` its name, ``message`` a sentence for people (in the
language of ``Accept-Language``), ``errors`` maps field names to lists of messages (nested for
nested objects). Request-validation errors from webargs arrive grouped by location (``json``,
``query``, ``headers``); they are merged into one field map so that a client reads
``errors["latitude"]`` whether the schema or the service refused the value.
"""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from flask import Response, jsonify, request
from flask_babel import gettext as _
from werkzeug.exceptions import HTTPException
from werkzeug.http import HTTP_STATUS_CODES

from exchange.errors import DomainError

API_PREFIX = "/api/"
_LOCATIONS = ("json", "query", "headers", "form", "files", "cookies", "path", "view_args")


class ErrorSchema(ma.Schema):
    """Documents the error payload (responses are built by :func:`error_response`)."""

    code = ma.fields.Integer(required=True, metadata={"description": "HTTP status code."})
    status = ma.fields.String(required=True, metadata={"description": "HTTP status name."})
    message = ma.fields.String(required=True, metadata={"description": "What went wrong."})
    errors = ma.fields.Dict(
        required=True,
        keys=ma.fields.String(),
        metadata={"description": "Field name → messages (nested for nested objects)."},
    )


def is_api_request() -> bool:
    return request.path.startswith(API_PREFIX)


def _default_message(code: int) -> str:
    messages = {
        400: _("The request could not be read."),
        401: _("This needs an API token: send “Authorization: Bearer <token>”."),
        403: _("You are not allowed to do this."),
        404: _("There is nothing at this address."),
        405: _("This address does not accept that method."),
        409: _("This conflicts with the current state. Reload and try again."),
        413: _("The request is too large."),
        415: _("Send the body as JSON (Content-Type: application/json)."),
        422: _("Please correct the marked fields."),
        429: _("Too many requests in a short time. Please slow down and retry later."),
        500: _("The exchange could not finish this request. Nothing was saved."),
    }
    return messages.get(code, HTTP_STATUS_CODES.get(code, "Error"))


def field_errors(messages: Any) -> dict[str, Any]:
    """webargs' ``{location: {field: [...]}}`` merged into ``{field: [...]}``."""
    if not isinstance(messages, dict):
        return {"_request": messages if isinstance(messages, list) else [str(messages)]}
    if not any(key in _LOCATIONS for key in messages):
        return messages
    merged: dict[str, Any] = {}
    for location, fields in messages.items():
        if isinstance(fields, dict):
            merged.update(fields)
        else:  # e.g. {"json": ["Invalid JSON body."]}
            merged.setdefault("_" + location, []).extend(
                fields if isinstance(fields, list) else [fields]
            )
    return merged


def error_body(code: int, message: str, errors: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "code": code,
        "status": HTTP_STATUS_CODES.get(code, "Error"),
        "message": message,
        "errors": errors or {},
    }


def error_response(error: HTTPException) -> Response:
    """JSON for any HTTP error under /api/, keeping headers such as ``Allow`` and
    ``WWW-Authenticate`` (flask-smorest's own handler drops ``Allow`` on 405s)."""
    code = error.code or 500
    data = getattr(error, "data", None) or {}
    message = data.get("message") or _default_message(code)
    if "errors" in data:
        errors = field_errors(data["errors"])
    elif "messages" in data:
        errors = field_errors(data["messages"])
    else:
        errors = {}
    response = jsonify(error_body(code, str(message), errors))
    response.status_code = code
    for name, value in error.get_headers():
        if name.lower() != "content-type":
            response.headers[name] = value
    for name, value in (data.get("headers") or {}).items():
        response.headers[name] = value
    return response


def domain_error_response(error: DomainError) -> Response:
    response = jsonify(error_body(error.status, str(error.message), error.errors))
    response.status_code = error.status
    return response
