"""One place that turns errors into responses: HTML pages for the site, JSON for the API."""

from __future__ import annotations

from flask import Flask, jsonify, render_template, request
from flask_babel import gettext as _
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from exchange.apiplatform import errors as api_errors
from exchange.errors import DomainError


def _wants_json() -> bool:
    return request.path.startswith("/api/")


def _page(status: int, title: str, message: str):  # type: ignore[no-untyped-def]
    if _wants_json():
        return jsonify(api_errors.error_body(status, message)), status
    return render_template("errors/error.html", status=status, title=title, message=message), status


def init_app(app: Flask) -> None:
    @app.errorhandler(DomainError)
    def domain_error(error: DomainError):  # type: ignore[no-untyped-def]
        if _wants_json():
            return api_errors.domain_error_response(error)
        return render_template(
            "errors/error.html",
            status=error.status,
            title=_("This cannot be done"),
            message=str(error.message),
            errors=error.errors,
        ), error.status

    @app.errorhandler(CSRFError)
    def csrf_error(error: CSRFError):  # type: ignore[no-untyped-def]
        return _page(
            400,
            _("Form expired"),
            _(
                "The form was too old or came from another site. Please go back, reload "
                "the page and try again."
            ),
        )

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException):  # type: ignore[no-untyped-def]
        if _wants_json():
            return api_errors.error_response(error)
        code = error.code or 500
        titles = {
            403: _("Not allowed"),
            404: _("Page not found"),
            405: _("Method not allowed"),
            413: _("File too large"),
            429: _("Too many attempts"),
        }
        messages = {
            403: _("You do not have access to this page."),
            404: _("There is nothing at this address."),
            405: _("This address does not accept that kind of request."),
            413: _("The file is larger than the exchange accepts. Nothing was saved."),
            429: _("Too many attempts in a short time. Please wait a few minutes and try again."),
        }
        body, status = _page(
            code, titles.get(code, error.name), messages.get(code, error.description or "")
        )
        response = app.make_response((body, status))
        allow = dict(error.get_headers()).get("Allow")
        if allow:  # keep Allow on 405s (Werkzeug sets it; a custom page must not drop it)
            response.headers["Allow"] = allow
        return response

    @app.errorhandler(500)
    def server_error(error: Exception):  # type: ignore[no-untyped-def]
        return _page(
            500,
            _("Something went wrong"),
            _(
                "The exchange could not finish this request. Nothing was saved. "
                "Please try again; if it keeps happening, tell the administrators."
            ),
        )
