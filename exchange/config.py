"""Settings read from the environment.

The embedded default (``make run``) needs nothing set: SQLite under ``instance/``, in-process jobs,
memory rate limits, e-mail kept in the outbox. Production sets DATABASE_URL, REDIS_URL, SECRET_KEY,
SMTP_* and STRIPE_*.
"""

from __future__ import annotations

import os
import secrets
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
INSTANCE = ROOT / "instance"


def _bool(name: str, default: bool = False) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    return raw.strip().lower() in {"1", "true", "yes", "on"}


def _secret_key() -> str:
    """SECRET_KEY from the environment, else one kept in ``instance/`` across restarts."""
    if key := os.environ.get("SECRET_KEY"):
        return key
    INSTANCE.mkdir(exist_ok=True)
    path = INSTANCE / "secret_key"
    if not path.exists():
        path.write_text(secrets.token_hex(32))
        path.chmod(0o600)
    return path.read_text().strip()


MATCH_FREIGHT_KEYS = (
    "MATCH_ROAD_FACTOR",
    "MATCH_HANDLING",
    "MATCH_RATE_ROAD",
    "MATCH_RATE_RAIL",
    "MATCH_RATE_WATER",
    "MATCH_CO2_ROAD",
    "MATCH_CO2_RAIL",
    "MATCH_CO2_WATER",
)


def load_config(overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """The application settings: environment first, then ``overrides`` (tests)."""
    smtp_host = os.environ.get("SMTP_HOST", "")
    config: dict[str, Any] = {
        "SECRET_KEY": _secret_key(),
        "DATABASE_URL": os.environ.get(
            "DATABASE_URL", f"sqlite:///{INSTANCE / 'exchange.sqlite3'}"
        ),
        "REDIS_URL": os.environ.get("REDIS_URL", ""),
        "SMTP_HOST": smtp_host,
        "SMTP_PORT": int(os.environ.get("SMTP_PORT", "587")),
        "SMTP_USERNAME": os.environ.get("SMTP_USERNAME", ""),
        "SMTP_PASSWORD": os.environ.get("SMTP_PASSWORD", ""),
        "SMTP_STARTTLS": _bool("SMTP_STARTTLS", True),
        "MAIL_FROM": os.environ.get("MAIL_FROM", "Red Mud Exchange <no-reply@redmud.example>"),
        # Without SMTP the outbox is the only way mail is read, so it is shown in the UI.
        "SHOW_OUTBOX": _bool("SHOW_OUTBOX", not smtp_host),
        "STRIPE_SECRET_KEY": os.environ.get("STRIPE_SECRET_KEY", ""),
        "STRIPE_WEBHOOK_SECRET": os.environ.get("STRIPE_WEBHOOK_SECRET", ""),
        "STRIPE_API_BASE": os.environ.get("STRIPE_API_BASE", ""),
        "PUBLIC_URL": os.environ.get("PUBLIC_URL", "http://127.0.0.1:5000"),
        # Payments: the exchange's fee on money moved to a payee (% and minimum, in fen), the
        # days an invoice is due in, and the account bank transfers go to.
        "PAYMENTS_FEE_PCT": Decimal(os.environ.get("PAYMENTS_FEE_PCT", "1.0")),
        "PAYMENTS_FEE_MIN_FEN": int(os.environ.get("PAYMENTS_FEE_MIN_FEN", "5000")),
        "PAYMENTS_DUE_DAYS": int(os.environ.get("PAYMENTS_DUE_DAYS", "14")),
        "PAYMENTS_BANK_ACCOUNT_NAME": os.environ.get(
            "PAYMENTS_BANK_ACCOUNT_NAME",
            "赤泥交易所（示范）有限公司 Red Mud Exchange (Demo) Co., Ltd.",
        ),
        "PAYMENTS_BANK_ACCOUNT_NUMBER": os.environ.get(
            "PAYMENTS_BANK_ACCOUNT_NUMBER", "6222 0216 0000 1234 567"
        ),
        "PAYMENTS_BANK_ACCOUNT_BANK": os.environ.get(
            "PAYMENTS_BANK_ACCOUNT_BANK", "中国工商银行淄博分行 ICBC Zibo Branch (demo)"
        ),
        # "bank" or "stripe"; empty: Stripe when its keys are set, else bank transfer.
        "PAYMENTS_GATEWAY": os.environ.get("PAYMENTS_GATEWAY", ""),
        "PAYMENTS_OVERDUE_SECONDS": int(os.environ.get("PAYMENTS_OVERDUE_SECONDS", "3600")),
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": _bool("SESSION_COOKIE_SECURE", False),
        "REMEMBER_COOKIE_HTTPONLY": True,
        "REMEMBER_COOKIE_SAMESITE": "Lax",
        "REMEMBER_COOKIE_SECURE": _bool("SESSION_COOKIE_SECURE", False),
        "WTF_CSRF_ENABLED": True,
        "WTF_CSRF_TIME_LIMIT": None,
        "BOOTSTRAP_SERVE_LOCAL": True,
        "BABEL_DEFAULT_LOCALE": "zh_Hans_CN",
        "BABEL_DEFAULT_TIMEZONE": os.environ.get("DISPLAY_TIMEZONE", "Asia/Shanghai"),
        "LANGUAGES": {"zh_Hans_CN": "中文", "en": "English"},
        "RATELIMIT_ENABLED": _bool("RATELIMIT_ENABLED", True),
        "RATELIMIT_HEADERS_ENABLED": True,
        "PASSWORD_RESET_MAX_AGE": int(os.environ.get("PASSWORD_RESET_MAX_AGE", "3600")),
        "INVITATION_MAX_AGE_DAYS": 14,
        # Failed logins for one e-mail within the window that count as a burst worth auditing.
        "LOGIN_BURST_THRESHOLD": 5,
        "LOGIN_BURST_WINDOW_SECONDS": 900,
        # In-process background jobs (checkpointing, later closing and matching) in the embedded
        # default; production runs them with RQ workers instead.
        "RUN_JOBS_IN_PROCESS": _bool("RUN_JOBS_IN_PROCESS", not os.environ.get("REDIS_URL")),
        "AUDIT_CHECKPOINT_SECONDS": int(os.environ.get("AUDIT_CHECKPOINT_SECONDS", "300")),
        # JSON API: requests per token (per address without one), and how long an
        # Idempotency-Key's stored response is replayed.
        "API_RATE_LIMIT": os.environ.get("API_RATE_LIMIT", "300 per minute;10000 per hour"),
        "IDEMPOTENCY_KEY_HOURS": int(os.environ.get("IDEMPOTENCY_KEY_HOURS", "24")),
        # Listings: publish a verified producer's lot without moderation once its assay is
        # complete; uploaded certificates and photos (outside static/, served with checks).
        "LISTINGS_AUTO_PUBLISH": _bool("LISTINGS_AUTO_PUBLISH", False),
        #: Lots per page of the public catalogue.
        "LISTINGS_PER_PAGE": int(os.environ.get("LISTINGS_PER_PAGE", "25")),
        "LISTINGS_MAX_UPLOAD_BYTES": int(os.environ.get("LISTINGS_MAX_UPLOAD_BYTES", "10000000")),
        "UPLOAD_DIR": os.environ.get("UPLOAD_DIR", str(INSTANCE / "uploads")),
        # Trading: contract signature window after an award, the producer's window to accept
        # bids below the reserve, how often due lots are closed, bids per company (Flask-Limiter).
        "TRADING_SIGNATURE_HOURS": int(os.environ.get("TRADING_SIGNATURE_HOURS", "48")),
        "TRADING_RESERVE_DECISION_HOURS": int(
            os.environ.get("TRADING_RESERVE_DECISION_HOURS", "48")
        ),
        "TRADING_CLOSE_SECONDS": int(os.environ.get("TRADING_CLOSE_SECONDS", "5")),
        "TRADING_CLOSE_BATCH": int(os.environ.get("TRADING_CLOSE_BATCH", "500")),
        "TRADING_NOTICE_SECONDS": int(os.environ.get("TRADING_NOTICE_SECONDS", "30")),
        "TRADING_BID_RATE_LIMIT": os.environ.get(
            "TRADING_BID_RATE_LIMIT", "30 per minute;600 per hour"
        ),
        "TRADING_POLL_SECONDS": int(os.environ.get("TRADING_POLL_SECONDS", "3")),
        "TESTING": False,
        # Matching: how often the sweep recomputes what changed.
        "MATCH_SWEEP_SECONDS": int(os.environ.get("MATCH_SWEEP_SECONDS", "60")),
    }
    # Freight and CO2 settings for matching; empty keeps the sourced defaults documented in
    # exchange/demand/freight.py (MATCH_RATE_WATER has none: water is unpriced until set).
    for key in MATCH_FREIGHT_KEYS:
        config[key] = os.environ.get(key, "")
    config["RATELIMIT_STORAGE_URI"] = config["REDIS_URL"] or "memory://"
    # Bodies larger than the largest upload plus its form are refused before parsing (413).
    config.setdefault(
        "MAX_CONTENT_LENGTH",
        int(os.environ.get("MAX_CONTENT_LENGTH", config["LISTINGS_MAX_UPLOAD_BYTES"] + 1_000_000)),
    )
    if overrides:
        config.update(overrides)
    return config
