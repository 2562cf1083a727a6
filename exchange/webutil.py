"""Small helpers shared by the HTML routes."""

from __future__ import annotations

from flask import flash
from flask_babel import get_locale
from flask_wtf import FlaskForm

from exchange.errors import ValidationError


def attach_errors(form: FlaskForm, error: ValidationError) -> None:
    """Show a service's field errors next to the form's fields (others as a flash message)."""
    unplaced = []
    for name, messages in error.errors.items():
        field = getattr(form, name, None)
        if field is not None and hasattr(field, "errors"):
            field.errors = list(field.errors) + list(messages)
        else:
            unplaced.extend(messages)
    for message in unplaced or ([] if error.errors else [str(error.message)]):
        flash(message, "danger")


def locale() -> str:
    return str(get_locale())
