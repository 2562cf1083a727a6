"""The JSON API platform: ``/api/v1`` with flask-smorest, tokens, errors, idempotency, limits.

Adding a context's endpoints (nothing outside the context's package to edit)::

    # exchange/listings/api.py
    from flask.views import MethodView
    from exchange.apiplatform import ApiBlueprint, api_actor, paginate_query
    from exchange.db import commit, get_session

    blp = ApiBlueprint("lots", __name__, url_prefix="/lots", description="Lots for sale.")

    @blp.route("/")
    class Lots(MethodView):
        @blp.public                                   # or @blp.auth() — exactly one, outermost
        @blp.arguments(LotFilterSchema, location="query")
        @blp.response(200, LotSchema(many=True))
        @blp.paginate()
        def get(self, filters, pagination_parameters):
            query = services.lots_query(filters)
            return paginate_query(get_session(), query, pagination_parameters)

        @blp.auth()                                   # writes need a read_write token
        @blp.idempotent                               # honours Idempotency-Key
        @blp.arguments(LotCreateSchema)
        @blp.response(201, LotSchema)
        def post(self, data):
            session = get_session()
            lot = services.create_lot(session, api_actor(), data)
            commit(session)
            return lot

    @blp.route("/<id:lot_id>")  # ``id`` converter: 1 … 2^31-1, else 404

Schemas live in ``exchange/<context>/schemas.py`` and use :mod:`exchange.apiplatform.fields`
(``Tonnes()``, ``PricePerTonne()``, ``DecimalString(...)``, ``MinorUnits()``, ``Timestamp()``).
Raise ``DomainError``s from services as usual: they become the JSON error shape. Document extra
error statuses with ``@blp.alt_response(404, response="NOT_FOUND")``. A module may export
``blueprints = [...]`` instead of one ``blp``.

:func:`init_app` finds ``exchange/<context>/api.py`` through :data:`API_CONTEXTS`, mounts it
under ``/api/v1``, exempts it from CSRF (the API never reads session cookies), puts the
per-token rate limit on it and adds it to the OpenAPI document.
"""

from __future__ import annotations

import importlib
import importlib.util
from typing import Any

from flask import Flask, current_app
from flask_smorest import Api
from werkzeug.routing import IntegerConverter

from exchange.apiplatform.auth import api_actor, current_caller, rate_limit_key
from exchange.apiplatform.blueprint import ApiBlueprint, paginate_query
from exchange.apiplatform.errors import ErrorSchema

API_PREFIX = "/api/v1"
#: Contexts whose ``api`` module, when it exists, is mounted (in this order in the document).
API_CONTEXTS = (
    "accounts",
    "catalog",
    "listings",
    "demand",
    "trading",
    "contracts",
    "payments",
    "reporting",
    "audit",
)

__all__ = [
    "API_PREFIX",
    "ApiBlueprint",
    "api_actor",
    "current_caller",
    "init_app",
    "paginate_query",
]

_DESCRIPTION = """\
The JSON API of Red Mud Exchange (赤泥交易所): the same rules as the web pages, because both call
the same services.

* **Authentication:** create a personal token under *API tokens* in the web app and send it as
  `Authorization: Bearer rmx_…`. Browser session cookies are not accepted. What the web shows
  anonymous visitors is readable without a token. A `read` token is refused on every write (403).
* **Decimals** (tonnes, prices per tonne, coordinates) are JSON *strings* such as `"1250.500"`;
  JSON numbers are refused. **Money** is integer minor units (fen). **Times** are ISO 8601 with
  a zone offset. A negative price per tonne is a disposal fee the producer pays.
* **Errors** are `{"code", "status", "message", "errors"}` with field messages in `errors`.
* **Pages:** `page` and `page_size` (≤ 100); the `X-Pagination` header carries the totals.
* **Retries:** send `Idempotency-Key` on creates; a retry returns the first response.
* **Rate limits** are per token (per address without one): 429 with `Retry-After`.
"""


class ExchangeApi(Api):
    """flask-smorest's Api, with the app's own error handling and context tags."""

    ERROR_SCHEMA = ErrorSchema

    def _register_error_handlers(self) -> None:
        """Errors are rendered by :mod:`exchange.handlers` (JSON under /api/, HTML elsewhere)."""

    def _register_pagination_header(self) -> None:
        """``X-Pagination`` carries a JSON object *as a string*; documenting it as an object
        (flask-smorest's default) makes header validators expect something a header can't be."""
        self.spec.components.header(
            "PAGINATION",
            {
                "description": "Pagination metadata as a JSON object: total, total_pages, "
                "first_page, last_page, page, previous_page, next_page.",
                "schema": {"type": "string"},
                "example": '{"total": 42, "total_pages": 5, "first_page": 1, '
                '"last_page": 5, "page": 2, "previous_page": 1, "next_page": 3}',
            },
            lazy=True,
        )

    def register_blueprint(self, blp: Any, *, parameters: Any = None, **options: Any) -> None:
        name = options.get("name", blp.name)
        self._app.extensions["flask-smorest"]["blp_name_to_api"][name] = self
        self._app.register_blueprint(blp, **options)
        blp.register_views_in_doc(self, self._app, self.spec, name=name, parameters=parameters)
        self.spec.tag({"name": getattr(blp, "tag", name), "description": blp.description})


class IdConverter(IntegerConverter):
    """``<id:name>``: a database id, 1 … 2^31-1; anything else is a 404, never a DB error."""

    def __init__(self, url_map: Any) -> None:
        super().__init__(url_map, min=1, max=2**31 - 1)


def _rate_limit() -> str:
    return str(current_app.config["API_RATE_LIMIT"])


def context_blueprints() -> list[ApiBlueprint]:
    """The ``blp`` (or ``blueprints``) of every context in :data:`API_CONTEXTS` with an api."""
    found: list[ApiBlueprint] = []
    for context in API_CONTEXTS:
        name = f"exchange.{context}.api"
        if importlib.util.find_spec(f"exchange.{context}") is None:
            continue
        if importlib.util.find_spec(name) is None:
            continue
        module = importlib.import_module(name)
        found.extend(getattr(module, "blueprints", None) or [module.blp])
    return found


def _check_access_declared(app: Flask, blp: ApiBlueprint) -> None:
    """Fail at start-up if a view of ``blp`` has no ``@blp.public`` / ``@blp.auth()``."""
    from exchange.apiplatform.blueprint import ACCESS_ATTRIBUTE

    for rule in app.url_map.iter_rules():
        if not rule.endpoint.startswith(blp.name + "."):
            continue
        view = app.view_functions[rule.endpoint]
        view_class = getattr(view, "view_class", None)
        methods = sorted((rule.methods or set()) - {"HEAD", "OPTIONS"})
        funcs = [getattr(view_class, m.lower()) for m in methods] if view_class else [view]
        for func in funcs:
            if not hasattr(func, ACCESS_ATTRIBUTE):
                raise RuntimeError(
                    f"API view {rule.endpoint} ({func.__name__}) declares no access: "
                    "decorate it with @blp.public or @blp.auth()"
                )


def init_app(app: Flask) -> ExchangeApi:
    from exchange.apiplatform import docs
    from exchange.extensions import csrf, limiter

    app.config.update(
        API_TITLE="Red Mud Exchange API",
        API_VERSION="v1",
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX=API_PREFIX,
        OPENAPI_JSON_PATH="openapi.json",
        API_SPEC_OPTIONS={
            "info": {"description": _DESCRIPTION},
            "components": {
                "securitySchemes": {
                    "bearerAuth": {
                        "type": "http",
                        "scheme": "bearer",
                        "bearerFormat": "rmx_…",
                        "description": "A personal API token created in the web app.",
                    }
                }
            },
        },
    )
    app.url_map.converters["id"] = IdConverter
    api = ExchangeApi(app)
    for blp in context_blueprints():
        csrf.exempt(blp)
        if not getattr(blp, "_rate_limited", False):
            limiter.limit(_rate_limit, key_func=rate_limit_key)(blp)
            blp._rate_limited = True
        api.register_blueprint(blp, url_prefix=API_PREFIX + (blp.url_prefix or ""))
        _check_access_declared(app, blp)
    docs.init_app(app)
    app.extensions["exchange.api"] = api
    return api
