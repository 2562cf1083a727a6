"""JSON API of the audit trail, for administrators: browse events, verify every chain."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView
from flask_babel import gettext as _

from exchange.apiplatform import ApiBlueprint, api_actor, paginate_query
from exchange.audit.models import AuditEvent
from exchange.audit.schemas import EventFilterSchema, EventSchema, VerifyReportSchema
from exchange.audit.services import VerifyReport, events_query, verify
from exchange.db import get_session
from exchange.errors import Forbidden

blp = ApiBlueprint(
    "audit",
    __name__,
    url_prefix="/audit",
    description="The tamper-evident audit trail (administrators).",
)


def _require_admin() -> None:
    if not api_actor().is_admin:
        raise Forbidden(_("Only administrators can do this."))


@blp.route("/events")
class Events(MethodView):
    @blp.auth()
    @blp.arguments(EventFilterSchema, location="query")
    @blp.response(200, EventSchema(many=True))
    @blp.paginate(page_size=50)
    def get(self, filters: dict[str, Any], pagination_parameters: Any) -> list[AuditEvent]:
        """Audit events, newest first, with the web audit log's filters"""
        _require_admin()
        return paginate_query(get_session(), events_query(**filters), pagination_parameters)


@blp.route("/verify")
class Verify(MethodView):
    @blp.auth(scope="read")
    @blp.response(200, VerifyReportSchema)
    def post(self) -> VerifyReport:
        """Walk every chain and checkpoint; report counts and the broken links (changes nothing;
        a read token may call it)"""
        _require_admin()
        return verify(get_session())
