"""E-mail leaves by SMTP after the commit when SMTP is configured (a local fake SMTP server)."""

import socketserver
import threading
import uuid

import pytest
from sqlalchemy import select

from exchange import create_app
from exchange.db import session_scope
from exchange.notifications.models import EmailMessage, EmailStatus
from exchange.notifications.services import queue_email
from tests.conftest import TEST_CONFIG, create_database


class _SMTPHandler(socketserver.StreamRequestHandler):
    received: list[bytes] = []

    def _say(self, line: str) -> None:
        self.wfile.write((line + "\r\n").encode())

    def handle(self) -> None:
        self._say("220 fake ESMTP")
        while line := self.rfile.readline():
            command = line.decode().strip().upper()
            if command.startswith(("EHLO", "HELO")):
                self._say("250 fake")
            elif command.startswith(("MAIL", "RCPT", "RSET", "NOOP")):
                self._say("250 OK")
            elif command == "DATA":
                self._say("354 go ahead")
                body = b""
                while (chunk := self.rfile.readline()) not in (b".\r\n", b""):
                    body += chunk
                self.received.append(body)
                self._say("250 queued")
            elif command == "QUIT":
                self._say("221 bye")
                return
            else:
                self._say("502 not implemented")


@pytest.fixture()
def smtp_server():
    _SMTPHandler.received = []
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _SMTPHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1], _SMTPHandler.received
    server.shutdown()
    server.server_close()


def test_queued_mail_is_sent_by_smtp_after_commit_only(smtp_server, tmp_path):
    port, received = smtp_server
    url = create_database("sqlite", tmp_path, f"mail_{uuid.uuid4().hex[:6]}")
    app = create_app(
        {
            **TEST_CONFIG,
            "DATABASE_URL": url,
            "SMTP_HOST": "127.0.0.1",
            "SMTP_PORT": port,
            "SMTP_STARTTLS": False,
        }
    )
    with app.app_context():
        with pytest.raises(RuntimeError), session_scope(app) as s:
            queue_email(s, "rolled-back@example.com", "Nope", "never sent", "test")
            raise RuntimeError("the request failed after queueing")
        with session_scope(app) as s:
            queue_email(s, "buyer@example.com", "Verified", "你的企业已认证", "test")
        with session_scope(app) as s:
            rows = s.scalars(select(EmailMessage)).all()
    assert [r.recipient for r in rows] == ["buyer@example.com"]
    assert rows[0].status is EmailStatus.SENT and rows[0].sent_at is not None
    assert len(received) == 1 and b"buyer@example.com" in received[0]
    app.extensions["exchange.engine"].dispose()


def test_unreachable_smtp_marks_the_message_failed_and_keeps_it(tmp_path):
    url = create_database("sqlite", tmp_path, f"mail_{uuid.uuid4().hex[:6]}")
    app = create_app(
        {
            **TEST_CONFIG,
            "DATABASE_URL": url,
            "SMTP_HOST": "127.0.0.1",
            "SMTP_PORT": 9,
            "SMTP_STARTTLS": False,
        }
    )
    with app.app_context():
        with session_scope(app) as s:
            queue_email(s, "buyer@example.com", "Subject", "Body", "test")
        with session_scope(app) as s:
            message = s.scalars(select(EmailMessage)).one()
    assert message.status is EmailStatus.FAILED and message.error
    app.extensions["exchange.engine"].dispose()
