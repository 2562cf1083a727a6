"""A live exchange on a fresh SQLite database, served in a thread, and headless Chromium."""

from __future__ import annotations

import os
import shutil
import threading
import uuid
from collections.abc import Iterator

import pytest
from playwright.sync_api import expect
from werkzeug.serving import make_server

from exchange import create_app
from tests.conftest import ARTIFACTS, TEST_CONFIG, create_database

# Assertions wait as long as actions do: on a busy 2-core machine a page can take longer than
# Playwright's default five seconds to follow a form post.
expect.set_options(timeout=30_000)

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


#: The app behind each live server (by base URL), for tests that seed data directly.
LIVE_APPS: dict[str, object] = {}


def pytest_collection_modifyitems(config, items):  # type: ignore[no-untyped-def]
    if shutil.which("chromium") or os.path.exists(CHROMIUM):
        return
    # E2E_REQUIRED without Chromium is refused at session start (tests/conftest.py).
    skip = pytest.mark.skip(reason="Debian's chromium is not installed (apt install chromium)")
    for item in items:
        if "e2e" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="module")
def live_server(tmp_path_factory) -> Iterator[str]:
    url = create_database("sqlite", tmp_path_factory.mktemp("e2e"), f"e2e_{uuid.uuid4().hex[:6]}")
    uploads = str(tmp_path_factory.mktemp("uploads"))
    app = create_app(
        {**TEST_CONFIG, "DATABASE_URL": url, "WTF_CSRF_ENABLED": True, "UPLOAD_DIR": uploads}
    )
    server = make_server("127.0.0.1", 0, app, threaded=True)
    base = f"http://127.0.0.1:{server.server_port}"
    app.config["PUBLIC_URL"] = base
    LIVE_APPS[base] = app
    from exchange.db import session_scope
    from exchange.demo import load

    with app.app_context(), session_scope(app) as s:
        load(s)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield base
    server.shutdown()


@pytest.fixture(scope="module")
def live_app(live_server):  # type: ignore[no-untyped-def]
    """The Flask app behind ``live_server``, to seed what no merged context can create yet."""
    return LIVE_APPS[live_server]


@pytest.fixture(scope="module")
def browser():  # type: ignore[no-untyped-def]
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture()
def shots(request) -> Iterator[object]:  # type: ignore[no-untyped-def]
    folder = ARTIFACTS / "screenshots"
    folder.mkdir(parents=True, exist_ok=True)

    def take(page, name: str) -> None:  # type: ignore[no-untyped-def]
        page.screenshot(path=str(folder / f"{name}.png"), full_page=True)

    yield take
