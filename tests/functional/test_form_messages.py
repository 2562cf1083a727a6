"""WTForms' own messages follow the request's language (its catalogues are loaded once per
process and language, see ``exchange.i18n.FormTranslations``)."""

from __future__ import annotations

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
