"""Periodic jobs: each tick runs once across workers (Redis lock), and the checkpoint job seals."""

import os
import threading
import uuid

import pytest
import redis

from exchange.actor import SYSTEM
from exchange.audit.services import record_event, verify
from exchange.jobs import PeriodicJob, periodic_jobs, run_once

REDIS_URL = os.environ.get("REDIS_TEST_URL", "redis://127.0.0.1:6379/15")


def _redis_or_skip():
    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.ping()
    except redis.ConnectionError:
        if os.environ.get("E2E_REQUIRED"):  # CI: Redis must be there
            raise
        pytest.skip("Redis is not running on 127.0.0.1:6379")
    return client


def test_a_tick_runs_once_however_many_workers_try(app):
    _redis_or_skip()
    runs = []
    job = PeriodicJob(f"test-{uuid.uuid4().hex[:8]}", 60, lambda _app: runs.append(1))
    barrier = threading.Barrier(6)
    app.config["REDIS_URL"] = REDIS_URL
    try:

        def worker():
            barrier.wait()
            run_once(app, job)

        threads = [threading.Thread(target=worker) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        app.config["REDIS_URL"] = ""
    assert runs == [1]


def test_without_redis_every_call_runs(app):
    runs = []
    job = PeriodicJob("local", 60, lambda _app: runs.append(1))
    run_once(app, job)
    run_once(app, job)
    assert runs == [1, 1]


def test_checkpoint_job_seals_new_events(app, db):
    record_event(db, SYSTEM, "test:thing:touched", "thing", 1)
    db.flush()
    checkpoint = next(j for j in periodic_jobs(app) if j.name == "audit-checkpoint")
    with app.app_context():
        checkpoint.run(app)
    assert verify(db).unsealed_events == 0
