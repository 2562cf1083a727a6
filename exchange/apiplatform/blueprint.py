"""``ApiBlueprint``: flask-smorest's Blueprint plus the exchange's access and idempotency rules.

Every API view declares who may call it with exactly one of

- ``@blp.public``: anyone, like the anonymous web; a token is optional (a bad one is still 401);
- ``@blp.auth()``: a valid token; writes need a ``read_write`` token (``scope="read"`` lets a
  read token POST to an operation that changes nothing).

``@blp.idempotent`` honours ``Idempotency-Key`` on a POST that creates. Decorator order, outside
in: access → ``idempotent`` → ``arguments`` → ``response`` → ``paginate``. The access decorator
being outermost also lets it refuse query parameters the operation does not document (422), so
a misspelt filter never silently returns everything. The app refuses to start if an API view
lacks an access decorator.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

import marshmallow as ma
from flask import request
from flask_babel import gettext as _
from flask_smorest import Blueprint, abort
from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from exchange.apiplatform import auth, idempotency

ACCESS_ATTRIBUTE = "_api_access"


class IdempotencyHeaderSchema(ma.Schema):
    class Meta:
        unknown = ma.EXCLUDE

    idempotency_key = ma.fields.String(
        data_key=idempotency.HEADER,
        validate=[
            ma.validate.Length(min=1, max=idempotency.KEY_MAX_LENGTH),
            ma.validate.Regexp(r"^[\x21-\x7e]+$"),
        ],
        metadata={
            "description": "A unique key per create request (e.g. a UUID). A retry with the "
            "same key and body returns the first response instead of acting again; the same "
            "key with another body is refused (422). Kept for 24 hours."
        },
    )


def _query_names(func: Callable[..., Any]) -> frozenset[str]:
    """The query parameters ``func`` documents (its ``arguments(..., location="query")`` and
    ``paginate()``), read from flask-smorest's doc info on the function."""
    doc = getattr(func, "_apidoc", {})
    schemas = [
        p["schema"] for p in doc.get("arguments", {}).get("parameters", []) if p["in"] == "query"
    ]
    if "pagination" in doc:
        schemas.append(doc["pagination"]["parameters"]["schema"])
    names: set[str] = set()
    for schema in schemas:
        instance = schema() if isinstance(schema, type) else schema
        names.update(field.data_key or name for name, field in instance.fields.items())
    return frozenset(names)


def _refuse_unknown_query(allowed: frozenset[str]) -> None:
    """A misspelt filter must not silently widen a list: unknown parameters are a 422."""
    unknown = sorted(set(request.args) - allowed)
    if unknown:
        message = _("Unknown query parameter.")
        abort(
            422,
            message=_(
                "This operation has no such query parameter: %(names)s.", names=", ".join(unknown)
            ),
            errors={name: [message] for name in unknown},
        )


class ApiBlueprint(Blueprint):
    """A flask-smorest Blueprint for one context's ``/api/v1`` endpoints.

    ``ApiBlueprint("lots", __name__, url_prefix="/lots", description="...")`` is mounted at
    ``/api/v1/lots``; its Flask name is ``api_lots`` (so it never clashes with the context's web
    blueprint) and its operations are tagged ``lots`` in the OpenAPI document.
    """

    def __init__(self, name: str, import_name: str, **kwargs: Any) -> None:
        super().__init__(f"api_{name}", import_name, **kwargs)
        self.tag = name

    def route(self, rule: str, *, parameters: Any = None, tags: Any = None, **options: Any) -> Any:
        return super().route(rule, parameters=parameters, tags=tags or [self.tag], **options)

    def public(self, func: Callable[..., Any]) -> Callable[..., Any]:
        """Anyone may call this; with a token the caller is its user."""

        allowed = _query_names(func)

        @wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            auth.current_caller()
            _refuse_unknown_query(allowed)
            return func(*args, **kwargs)

        setattr(wrapper, ACCESS_ATTRIBUTE, "public")
        documented = self.doc(security=[{}, {auth.SECURITY_SCHEME: []}])(wrapper)
        documented = self.alt_response(401, response="UNAUTHORIZED")(documented)
        return self.alt_response(429, response="TOO_MANY_REQUESTS")(documented)

    def auth(self, scope: str | None = None) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """Require a token; see :func:`exchange.apiplatform.auth.require_token` for ``scope``."""

        def decorator(func: Callable[..., Any]) -> Callable[..., Any]:
            allowed = _query_names(func)

            @wraps(func)
            def wrapper(*args: Any, **kwargs: Any) -> Any:
                auth.require_token(scope)
                _refuse_unknown_query(allowed)
                return func(*args, **kwargs)

            setattr(wrapper, ACCESS_ATTRIBUTE, scope or "token")
            documented = self.doc(security=[{auth.SECURITY_SCHEME: []}])(wrapper)
            documented = self.alt_response(401, response="UNAUTHORIZED")(documented)
            documented = self.alt_response(403, response="FORBIDDEN")(documented)
            return self.alt_response(429, response="TOO_MANY_REQUESTS")(documented)

        return decorator

    def idempotent(self, func: Callable[..., Any]) -> Callable[..., Any]:
        """Honour ``Idempotency-Key`` (optional header) on a create; place it under the access
        decorator so the caller is known."""

        @wraps(func)
        def wrapper(*args: Any, idempotency_key: str | None = None, **kwargs: Any) -> Any:
            user_id = auth.current_caller().actor.user_id
            return idempotency.run_idempotent(
                user_id, idempotency_key, lambda: func(*args, **kwargs)
            )

        documented = self.arguments(IdempotencyHeaderSchema, location="headers", as_kwargs=True)(
            wrapper
        )
        return self.alt_response(409, response="CONFLICT")(documented)


def paginate_query(session: Session, query: Select[Any], pagination_parameters: Any) -> list[Any]:
    """One page of ``query`` (ORM entities) for a ``@blp.paginate()`` view; sets the total
    for the ``X-Pagination`` header. A page past the end is empty (and costs no OFFSET)."""
    total = session.scalar(select(func.count()).select_from(query.order_by(None).subquery())) or 0
    pagination_parameters.item_count = total
    first = pagination_parameters.first_item
    if first >= total:
        return []
    return list(session.scalars(query.limit(pagination_parameters.page_size).offset(first)))
