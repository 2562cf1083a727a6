"""The parts of every page's frame that are the same for many requests, rendered once per
process: the top bar's menus and account menu for each kind of viewer, the frame's fixed parts
in each language, and Bootstrap's asset tags.

The menus (``_nav_items.html``) depend only on the language, on whether the viewer is an
administrator and on the viewer's company being a producer and/or a buyer: every page
rendered them again from about thirty translated labels and links. They are kept here by
exactly those inputs, which the template receives explicitly (it reads nothing else about the
viewer), so a cached menu is the one a fresh render would give. Nothing in them changes while
the process runs (labels, routes and settings are fixed at start), so the cache never goes
stale; it is kept per app and bounded by the few kinds of viewers times the languages.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import NamedTuple

from flask import Flask, current_app, render_template, request
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


_LOCK = threading.Lock()
_MAX = 256


def _cache() -> dict[object, Markup]:
    cache: dict[object, Markup] = current_app.extensions["exchange.navigation"]
    return cache


def _kept(key: object, render: Callable[[], str]) -> Markup:
    cache = _cache()
    html = cache.get(key)
    if html is None:
        html = Markup(render())  # noqa: S704 - rendered by autoescaped templates or Bootstrap
        with _LOCK:
            if len(cache) >= _MAX:
                cache.clear()
            cache[key] = html
    return html


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
    return _kept(
        ("menus", str(get_locale()), request.script_root, who),
        lambda: render_template("_nav_items.html", nav=who),
    )


def account_menu() -> Markup:
    """The account menu's entries (signed in) or the log-in and register links (anonymous), for
    the current viewer and language (from the cache when seen)."""
    signed_in = bool(current_user.is_authenticated)
    has_company = signed_in and current_user.company is not None
    show_outbox = bool(current_app.config["SHOW_OUTBOX"] or (signed_in and current_user.is_admin))
    key = ("account", str(get_locale()), request.script_root, signed_in, has_company, show_outbox)
    return _kept(
        key,
        lambda: render_template(
            "_account_menu.html",
            signed_in=signed_in,
            has_company=has_company,
            show_outbox=show_outbox,
        ),
    )


#: The parts of every page's frame that depend on the language only: the stylesheet and icon
#: links (``head``), the skip link, the brand and the menu button (``top``), and the footer
#: with the script tags (``footer``).
_FRAME_PARTS = {part: f"_frame_{part}.html" for part in ("head", "top", "footer")}


def frame_part(name: str) -> Markup:
    """One of ``_FRAME_PARTS`` in the current language (from the cache when seen)."""
    return _kept(
        ("frame", name, str(get_locale()), request.script_root),
        lambda: render_template(_FRAME_PARTS[name]),
    )


def bootstrap_css() -> Markup:
    """Bootstrap's stylesheet tag (``bootstrap.load_css()``, which depends on settings only)."""
    bootstrap = current_app.extensions["bootstrap"]
    return _kept(("css", request.script_root), bootstrap.load_css)


def bootstrap_js() -> Markup:
    """Bootstrap's script tags (``bootstrap.load_js()``)."""
    bootstrap = current_app.extensions["bootstrap"]
    return _kept(("js", request.script_root), bootstrap.load_js)


def clear() -> None:
    for cache in _ALL:
        with _LOCK:
            cache.clear()


_ALL: list[dict[object, Markup]] = []


def init_app(app: Flask) -> None:
    cache: dict[object, Markup] = {}
    _ALL.append(cache)
    app.extensions["exchange.navigation"] = cache
    app.jinja_env.globals.update(
        nav_items=nav_items,
        account_menu=account_menu,
        frame_part=frame_part,
        bootstrap_css=bootstrap_css,
        bootstrap_js=bootstrap_js,
    )
