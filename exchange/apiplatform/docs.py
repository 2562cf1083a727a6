"""Browsable API documentation at ``/api/v1/docs``: Swagger UI served from this server.

The Swagger UI assets come from the ``swagger-ui-bundle`` package (no CDN). flask-smorest's own
Swagger page has an inline script, which the site's Content-Security-Policy forbids, so this
page loads its initialiser from ``static/js/api-docs.js`` instead and the CSP stays as it is.
"""

from __future__ import annotations

from flask import Blueprint, Flask, abort, render_template, send_from_directory, url_for

#: The only files served from the package's Swagger UI folder.
ASSETS = frozenset(
    {
        "swagger-ui.css",
        "swagger-ui-bundle.js",
        "swagger-ui-standalone-preset.js",
        "favicon-32x32.png",
        "favicon-16x16.png",
    }
)

bp = Blueprint("api_docs_ui", __name__, url_prefix="/api/v1/docs")


@bp.route("")
def page():  # type: ignore[no-untyped-def]
    return render_template("api/docs.html", spec_url=url_for("api-docs.openapi_json"))


@bp.route("/assets/<name>")
def asset(name: str):  # type: ignore[no-untyped-def]
    from swagger_ui_bundle import swagger_ui_path

    if name not in ASSETS:
        abort(404)
    return send_from_directory(str(swagger_ui_path), name, max_age=86400)


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
