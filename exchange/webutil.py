"""Small helpers shared by the HTML routes."""

from __future__ import annotations

from collections.abc import Callable

from flask import flash
from flask_babel import get_locale
from flask_wtf import FlaskForm
from sqlalchemy.orm import Session

from exchange.db import commit
from exchange.errors import DomainError, ValidationError


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


def submit_form_action(
    session: Session, form: FlaskForm, action: Callable[[], object], success: str
) -> int | None:
    """Run one service for a submitted form and commit; None when it worked (the route then
    redirects), else the status to render the form again with: field errors on the form (422),
    other refusals as a flash message (their own status). Nothing is kept when it fails."""
    try:
        action()
    except ValidationError as exc:
        session.rollback()
        attach_errors(form, exc)
        return 422
    except DomainError as exc:
        session.rollback()
        flash(str(exc.message), "danger")
        return exc.status
    commit(session)
    flash(success, "success")
    return None
