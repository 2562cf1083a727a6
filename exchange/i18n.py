"""Language and time-zone selection, and the template helpers that depend on them."""

from __future__ import annotations

import datetime as dt
import functools
from decimal import Decimal
from typing import Any

from babel import support
from flask import Flask, current_app, g, has_request_context, request, session
from flask_babel import format_datetime, format_decimal, get_locale, get_translations
from flask_login import current_user
from flask_wtf import FlaskForm
from wtforms.meta import DefaultMeta

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


@functools.lru_cache(maxsize=16)
def _form_catalogue(locale: str) -> support.Translations | support.NullTranslations:
    from wtforms.i18n import messages_path

    return support.Translations.load(messages_path(), [locale], domain="wtforms")


class FormTranslations:
    """WTForms' own messages ("This field is required.", ...) in the request's language.

    Flask-WTF's default reads WTForms' catalogue from disk again in every request that builds a
    form (a bid, every form page). The catalogues are files of the installed package that do
    not change while the process runs, so each language's is loaded once per process.
    """

    def _catalogue(self) -> support.Translations | support.NullTranslations | None:
        if not has_request_context():
            return None
        return _form_catalogue(str(get_locale()))

    def gettext(self, string: str) -> str:
        catalogue = self._catalogue()
        return string if catalogue is None else catalogue.ugettext(string)

    def ngettext(self, singular: str, plural: str, n: int) -> str:
        catalogue = self._catalogue()
        if catalogue is None:
            return singular if n == 1 else plural
        return catalogue.ungettext(singular, plural, n)


FORM_TRANSLATIONS = FormTranslations()


def _form_translations(meta: Any, form: Any) -> Any:
    if not current_app.config.get("WTF_I18N_ENABLED", True):
        return DefaultMeta.get_translations(meta, form)
    return FORM_TRANSLATIONS


def _page_translations() -> support.Translations | support.NullTranslations:
    """The request's catalogue for its templates, looked up once per locale and request.

    Flask-Babel's own lookup walks its request context, the domain and the locale again for
    every string, and a page shows dozens of them (the menus alone take about twenty). The
    catalogue is kept beside the locale Flask-Babel chose, keyed by that locale object, so a
    ``force_locale`` block (an e-mail in the recipient's language) gets its own.
    """
    context = g.get("_flask_babel")
    locale = getattr(context, "babel_locale", None)
    if locale is None:  # the locale is not chosen yet: let Flask-Babel choose and cache it
        return get_translations()
    kept = getattr(context, "page_translations", None)
    if kept is None or kept[0] is not locale:
        kept = context.page_translations = (locale, get_translations())  # type: ignore[union-attr]
    return kept[1]


def init_app(app: Flask) -> None:
    babel.init_app(app, locale_selector=select_locale)
    app.jinja_env.install_gettext_callables(  # type: ignore[attr-defined]
        gettext=lambda s: _page_translations().ugettext(s),
        ngettext=lambda s, p, n: _page_translations().ungettext(s, p, n),
        newstyle=True,
        pgettext=lambda c, s: _page_translations().upgettext(c, s),
        npgettext=lambda c, s, p, n: _page_translations().unpgettext(c, s, p, n),
    )
    FlaskForm.Meta.get_translations = _form_translations  # type: ignore[method-assign]
    app.jinja_env.globals.update(is_zh=is_zh, get_locale=get_locale, province_name=_province)
    app.jinja_env.filters.update(dt=fmt_dt, num=fmt_num)
