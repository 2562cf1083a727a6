"""Red Mud Exchange (赤泥交易所): the application factory."""

from __future__ import annotations

from typing import Any

from flask import Flask

from exchange.config import ROOT, load_config


def create_app(config: dict[str, Any] | None = None) -> Flask:
    """Build the app: config → extensions → blueprints → error handlers → CLI."""
    app = Flask(
        __name__,
        template_folder=str(ROOT / "templates"),
        static_folder=str(ROOT / "static"),
        instance_path=str(ROOT / "instance"),
    )
    app.config.update(load_config(config))

    from exchange import db, i18n, navigation, security
    from exchange.extensions import bootstrap, csrf, limiter

    db.init_app(app)
    i18n.init_app(app)
    bootstrap.init_app(app)
    csrf.init_app(app)
    limiter.init_app(app)
    security.init_app(app)
    navigation.init_app(app)

    from exchange.accounts.admin_web import bp as admin_bp
    from exchange.accounts.web import bp as accounts_bp
    from exchange.audit.web import bp as audit_bp
    from exchange.contracts.web import bp as contracts_bp
    from exchange.demand.web import bp as demand_bp
    from exchange.listings.producer_web import bp as producer_lots_bp
    from exchange.listings.web import admin_bp as lots_admin_bp
    from exchange.listings.web import bp as listings_bp
    from exchange.notifications.web import bp as notifications_bp
    from exchange.payments.admin_web import bp as payments_admin_bp
    from exchange.payments.web import bp as payments_bp
    from exchange.reporting.admin_web import bp as reporting_admin_bp
    from exchange.reporting.web import bp as reporting_bp
    from exchange.trading.web import bp as trading_bp
    from exchange.web import bp as site_bp

    app.register_blueprint(site_bp)
    app.register_blueprint(accounts_bp)
    app.register_blueprint(admin_bp)
    app.register_blueprint(audit_bp)
    app.register_blueprint(notifications_bp)
    app.register_blueprint(contracts_bp)
    app.register_blueprint(reporting_bp)
    app.register_blueprint(reporting_admin_bp)

    from exchange import apiplatform
    from exchange.accounts.token_web import bp as api_tokens_bp

    app.register_blueprint(api_tokens_bp)
    apiplatform.init_app(app)
    app.register_blueprint(listings_bp)
    app.register_blueprint(lots_admin_bp)
    app.register_blueprint(producer_lots_bp)
    app.register_blueprint(trading_bp)
    app.register_blueprint(payments_bp)
    app.register_blueprint(payments_admin_bp)
    app.register_blueprint(demand_bp)

    from exchange import handlers

    handlers.init_app(app)

    from exchange import cli, jobs

    cli.init_app(app)
    jobs.init_app(app)
    return app
