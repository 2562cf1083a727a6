"""The app as ``make bench`` serves it under gunicorn, with a bare ``hello`` route beside the
real pages so that both are measured in the same run (``bench_catalogue``)."""

from __future__ import annotations

from exchange import create_app

app = create_app()


@app.route("/_bench/hello")
def hello() -> str:
    return "hello"
