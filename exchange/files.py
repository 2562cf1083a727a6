"""Uploaded files kept outside ``static/``: read with a size cap, stored once by SHA-256.

Files live under ``UPLOAD_DIR`` as ``<sha[:2]>/<sha>``, with no extension and never under the
uploader's name, so nothing uploaded can be reached, executed or rendered by the web server
directly. Each context decides who may add or read its files; this module only stores them.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from flask import Response, send_file
from flask_babel import lazy_gettext as _l

MAGIC: tuple[tuple[bytes, str, str], ...] = (
    (b"%PDF-", "application/pdf", ".pdf"),
    (b"\x89PNG\r\n\x1a\n", "image/png", ".png"),
    (b"\xff\xd8\xff", "image/jpeg", ".jpg"),
)
EXTENSIONS = {content_type: ext for _magic, content_type, ext in MAGIC}
_SUFFIXES = {
    "application/pdf": (".pdf",),
    "image/png": (".png",),
    "image/jpeg": (".jpg", ".jpeg"),
}
_UNSAFE_NAME_CHARS = re.compile(r"[^\w.()\- ]+", re.UNICODE)


def sniff_content_type(head: bytes) -> str | None:
    """The content type a file's first bytes prove (PDF, PNG, JPEG), else None."""
    for magic, content_type, _ext in MAGIC:
        if head.startswith(magic):
            return content_type
    return None


def safe_filename(name: str | None, content_type: str, fallback: str = "file") -> str:
    """A display and download name with no path, no control characters and the right extension.

    Keeps letters of any script (Chinese names survive), digits, spaces and ``._-()``; drops
    directories (``../`` and ``C:\\``), leading dots and everything else. The extension always
    matches the sniffed content type, so ``setup.exe`` that really is a PDF is offered as
    ``setup.exe.pdf`` and is never saved under an executable name.
    """
    raw = unicodedata.normalize("NFC", name or "")
    raw = raw.replace("\\", "/").rsplit("/", 1)[-1]
    raw = "".join(ch for ch in raw if unicodedata.category(ch)[0] != "C")
    cleaned = _UNSAFE_NAME_CHARS.sub("_", raw)
    for suffix in _SUFFIXES[content_type]:
        if cleaned.lower().endswith(suffix):
            cleaned = cleaned[: -len(suffix)]
            break
    stem = cleaned.strip(" ._")[:100] or fallback
    return stem + EXTENSIONS[content_type]


class UploadRefused(ValueError):
    """A file that may not be stored; ``message`` says why, for the user."""

    def __init__(self, message: object) -> None:
        super().__init__(str(message))
        self.message = message


@dataclass(frozen=True)
class CheckedFile:
    """An upload read and checked, not yet stored."""

    filename: str
    content_type: str
    data: bytes
    sha256: str


def check_upload(
    stream: BinaryIO, filename: str | None, max_bytes: int, *, fallback: str = "file"
) -> CheckedFile:
    """Read one upload and check it: PDF, PNG or JPEG by its content (never its name), not
    empty, at most ``max_bytes``. Raises :class:`UploadRefused` with the reason."""
    data = read_limited(stream, max_bytes)
    if data is None:
        raise UploadRefused(
            _l("The file is larger than %(mb)s MB.", mb=f"{max_bytes / 1_000_000:g}")
        )
    if not data:
        raise UploadRefused(_l("The file is empty."))
    content_type = sniff_content_type(data[:16])
    if content_type is None:
        raise UploadRefused(
            _l("Only PDF, PNG and JPEG files are accepted, checked by their content, not name.")
        )
    return CheckedFile(
        safe_filename(filename, content_type, fallback=fallback),
        content_type,
        data,
        hashlib.sha256(data).hexdigest(),
    )


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
