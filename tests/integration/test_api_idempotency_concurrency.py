"""Real threads, one Idempotency-Key: concurrent retries of a create act exactly once.

Runs on a database of its own because every request commits. The control (no key) shows the
same burst does create one site per request, so the test can fail.
"""

import threading
import uuid

import pytest
from sqlalchemy import func, select

from exchange import create_app
from exchange.accounts.models import Site
from exchange.accounts.services import actor_for
from exchange.accounts.tokens import create_token
from exchange.db import session_scope
from tests.conftest import BACKENDS, TEST_CONFIG, create_database, drop_database
from tests.support.builders import make_company

THREADS = 8
SITE = {"name": "Yard", "province": "37", "city": "c", "latitude": "36.5", "longitude": "118.5"}


@pytest.fixture(params=BACKENDS)
def committed(request, tmp_path):
    name = f"rmx_idem_{uuid.uuid4().hex[:8]}"
    url = create_database(request.param, tmp_path, name)
    app = create_app({**TEST_CONFIG, "DATABASE_URL": url})
    with app.app_context(), app.test_request_context(), session_scope(app) as s:
        company, user = make_company(s)
        secret = create_token(s, actor_for(user, None), "erp", "read_write").secret
        company_id = company.id
    yield app, company_id, secret
    app.extensions["exchange.engine"].dispose()
    drop_database(request.param, name)


def _burst(app, secret, key):
    barrier = threading.Barrier(THREADS)
    results: list[tuple[int, dict]] = []
    lock = threading.Lock()

    def post():
        client = app.test_client()
        headers = {"Authorization": f"Bearer {secret}"} | ({"Idempotency-Key": key} if key else {})
        barrier.wait()
        response = client.post("/api/v1/companies/me/sites", json=SITE, headers=headers)
        with lock:
            results.append((response.status_code, response.get_json()))

    threads = [threading.Thread(target=post) for _ in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def _sites(app, company_id):
    with app.app_context(), session_scope(app) as s:
        return s.scalar(select(func.count()).select_from(Site).where(Site.company_id == company_id))


def test_concurrent_retries_with_one_key_create_one_site(committed):
    app, company_id, secret = committed
    before = _sites(app, company_id)
    results = _burst(app, secret, "burst-1")
    statuses = sorted(code for code, _body in results)
    assert set(statuses) <= {201, 409}, results
    created_ids = {body["id"] for code, body in results if code == 201}
    assert len(created_ids) == 1, results
    assert _sites(app, company_id) == before + 1
    # Once settled, a retry replays the one result.
    client = app.test_client()
    replay = client.post(
        "/api/v1/companies/me/sites",
        json=SITE,
        headers={"Authorization": f"Bearer {secret}", "Idempotency-Key": "burst-1"},
    )
    assert replay.status_code == 201 and replay.get_json()["id"] in created_ids


def test_control_the_same_burst_without_a_key_creates_a_site_per_request(committed):
    app, company_id, secret = committed
    before = _sites(app, company_id)
    results = _burst(app, secret, None)
    assert [code for code, _body in results] == [201] * THREADS
    assert _sites(app, company_id) == before + THREADS
