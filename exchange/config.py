"""Settings read from the environment.

The embedded default (``make run``) needs nothing set: SQLite under ``instance/``, in-process jobs,
memory rate limits, e-mail kept in the outbox. Production sets DATABASE_URL, REDIS_URL, SECRET_KEY,
SMTP_* and STRIPE_*.
"""

from __future__ import annotations

import os
import secrets
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
        "TESTING": False,
        # Matching: how often the sweep recomputes what changed.
        "MATCH_SWEEP_SECONDS": int(os.environ.get("MATCH_SWEEP_SECONDS", "60")),
    }
    # Freight and CO2 settings for matching; empty keeps the sourced defaults documented in
    # exchange/demand/freight.py (MATCH_RATE_WATER has none: water is unpriced until set).
    for key in MATCH_FREIGHT_KEYS:
        config[key] = os.environ.get(key, "")
    config["RATELIMIT_STORAGE_URI"] = config["REDIS_URL"] or "memory://"
    if overrides:
        config.update(overrides)
    return config
