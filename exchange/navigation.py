"""The top bar's menus, rendered once per process for each kind of viewer.

The menus (``_nav_items.html``) depend only on the language, on whether the viewer is an
administrator and on the viewer's company being a producer and/or a buyer: every page
rendered them again from about thirty translated labels and links. They are kept here by
exactly those inputs, which the template receives explicitly (it reads nothing else about the
viewer), so a cached menu is the one a fresh render would give. Nothing in them changes while
the process runs (labels and routes are fixed at start), so the cache never goes stale; its
size is bounded by the few kinds of viewers times the languages.
"""

from __future__ import annotations

import threading
from typing import NamedTuple

from flask import Flask, render_template, request
from flask_babel import get_locale
from flask_login import current_user
from markupsafe import Markup


class NavCompany(NamedTuple):
    """What the menus need to know about the viewer's company."""

    is_producer: bool
    is_buyer: bool


class NavViewer(NamedTuple):
    admin: bool
    company: NavCompany | None


_MENUS: dict[tuple[str, str, NavViewer], Markup] = {}
_LOCK = threading.Lock()
_MAX = 256


def viewer() -> NavViewer:
    """The current viewer as far as the menus are concerned."""
    if not current_user.is_authenticated:
        return NavViewer(False, None)
    company = current_user.company
    return NavViewer(
        bool(current_user.is_admin),
        NavCompany(bool(company.is_producer), bool(company.is_buyer)) if company else None,
    )


def nav_items() -> Markup:
    """The rendered menus for the current viewer and language (from the cache when seen)."""
    who = viewer()
    key = (str(get_locale()), request.script_root, who)
    html = _MENUS.get(key)
    if html is None:
        html = Markup(render_template("_nav_items.html", nav=who))  # noqa: S704 - autoescaped
        with _LOCK:
            if len(_MENUS) >= _MAX:
                _MENUS.clear()
            _MENUS[key] = html
    return html


def clear() -> None:
    with _LOCK:
        _MENUS.clear()


def init_app(app: Flask) -> None:
    app.jinja_env.globals["nav_items"] = nav_items
