"""Language and time-zone selection, and the template helpers that depend on them."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from flask import Flask, current_app, has_request_context, request, session
from flask_babel import format_datetime, format_decimal, get_locale
from flask_login import current_user

from exchange.extensions import babel


def select_locale() -> str:
    """The user's explicit choice, then their saved preference, then the browser's."""
    if not has_request_context():  # jobs and CLI: services may still format messages
        return str(current_app.config["BABEL_DEFAULT_LOCALE"])
    languages = list(current_app.config["LANGUAGES"])
    if request.path.startswith("/api/"):  # the API ignores browser sessions: the header decides
        return _from_browser()
    chosen = session.get("locale")
    if chosen in languages:
        return str(chosen)
    if current_user and current_user.is_authenticated and current_user.locale in languages:
        return str(current_user.locale)
    return _from_browser()


def _from_browser() -> str:
    best = request.accept_languages.best_match(["zh", "zh-CN", "zh-Hans", "en"])
    if best and best.startswith("en"):
        return "en"
    return "zh_Hans_CN" if best else str(current_app.config["BABEL_DEFAULT_LOCALE"])


def is_zh() -> bool:
    return str(get_locale()).startswith("zh")


def fmt_dt(value: dt.datetime | None, fmt: str = "medium") -> str:
    return format_datetime(value, fmt) if value else ""


def fmt_num(value: Decimal | float | int | None, digits: int = 3) -> str:
    if value is None:
        return "—"
    return format_decimal(value, format="#,##0." + "#" * digits if digits else "#,##0")


def _province(code: str) -> str:
    from exchange.accounts.regions import province_name

    return province_name(code, "zh" if is_zh() else "en")


def init_app(app: Flask) -> None:
    babel.init_app(app, locale_selector=select_locale)
    app.jinja_env.globals.update(is_zh=is_zh, get_locale=get_locale, province_name=_province)
    app.jinja_env.filters.update(dt=fmt_dt, num=fmt_num)
