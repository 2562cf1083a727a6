"""WTForms' own messages and the templates' strings follow the request's language (WTForms'
catalogues are loaded once per process and language, see ``exchange.i18n.FormTranslations``)."""

from __future__ import annotations

from flask import render_template_string
from flask_babel import force_locale, refresh
from flask_wtf import FlaskForm
from wtforms import DecimalField


class _Form(FlaskForm):
    class Meta:
        csrf = False

    price = DecimalField()


def _errors(app, language: str) -> list[str]:
    with app.test_request_context(
        "/", method="POST", data={"price": "abc"}, headers={"Accept-Language": language}
    ):
        form = _Form()
        assert not form.validate()
        return list(form.price.errors)


def test_wtforms_messages_are_in_the_requests_language(app):
    assert _errors(app, "en") == ["Not a valid decimal value."]
    assert _errors(app, "zh-CN") == ["不是有效的小数。"]
    # Each language again, after the other's catalogue was loaded: no mix-up.
    assert _errors(app, "en") == ["Not a valid decimal value."]
    assert _errors(app, "zh-CN") == ["不是有效的小数。"]


def test_template_strings_follow_a_forced_locale_and_come_back(app):
    """Templates look the request's catalogue up once (``exchange.i18n._page_translations``);
    a ``force_locale`` block (an e-mail in its recipient's language) still gets its own."""
    page = "{{ _('Log in') }}"
    with app.test_request_context("/", headers={"Accept-Language": "en"}):
        assert render_template_string(page) == "Log in"
        with force_locale("zh_Hans_CN"):
            assert render_template_string(page) == "登录"
        assert render_template_string(page) == "Log in"
        refresh()  # a language switch in the middle of a request
        with force_locale("zh_Hans_CN"):
            assert render_template_string(page) == "登录"
