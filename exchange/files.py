"""Uploaded files kept outside ``static/``: read with a size cap, stored once by SHA-256.

Files live under ``UPLOAD_DIR`` as ``<sha[:2]>/<sha>``, with no extension and never under the
uploader's name, so nothing uploaded can be reached, executed or rendered by the web server
directly. Each context decides who may add or read its files; this module only stores them.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import BinaryIO

from flask import Response, send_file


def stored_path(upload_dir: str | Path, sha256: str) -> Path:
    return Path(upload_dir) / sha256[:2] / sha256


def read_limited(stream: BinaryIO, max_bytes: int) -> bytes | None:
    """Up to ``max_bytes`` from ``stream``; None if there is more (never reads it all)."""
    chunks, size = [], 0
    while chunk := stream.read(min(1 << 16, max_bytes + 1 - size)):
        chunks.append(chunk)
        size += len(chunk)
        if size > max_bytes:
            return None
    return b"".join(chunks)


def write_once(path: Path, data: bytes) -> None:
    """Write ``data`` at ``path`` atomically unless the same content is already there."""
    if path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".upload-")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(tmp, 0o640)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def send_stored(
    path: Path, content_type: str, filename: str, *, download: bool | None = None
) -> Response:
    """A stored file as a download (PDFs, or anything when ``download``) or an inline image,
    with headers that keep a browser from sniffing it into something else or running it."""
    response = send_file(
        path,
        mimetype=content_type,
        as_attachment=content_type == "application/pdf" if download is None else download,
        download_name=filename,
        conditional=True,
        max_age=0,
    )
    response.headers["X-Content-Type-Options"] = "nosniff"
    # Even if a browser tried to render it, it could run nothing and load nothing.
    response.headers["Content-Security-Policy"] = "default-src 'none'; sandbox"
    response.headers["Cache-Control"] = "private, no-store"
    return response
