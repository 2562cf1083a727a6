"""Trading settings, read from the app config when there is one (services stay Flask-free)."""

from __future__ import annotations

from dataclasses import dataclass

from flask import current_app, has_app_context


@dataclass(frozen=True)
class TradingSettings:
    #: Both parties must sign the contract within this many hours of an award.
    signature_hours: int = 48
    #: After a close below the reserve, the producer may accept the best bids for this long.
    reserve_decision_hours: int = 48
    #: Lots closed per transaction by the closing job.
    close_batch: int = 500

    @classmethod
    def current(cls) -> TradingSettings:
        """The app's settings inside an app context, else the defaults."""
        if not has_app_context():
            return cls()
        config = current_app.config
        return cls(
            signature_hours=int(config.get("TRADING_SIGNATURE_HOURS", cls.signature_hours)),
            reserve_decision_hours=int(
                config.get("TRADING_RESERVE_DECISION_HOURS", cls.reserve_decision_hours)
            ),
            close_batch=int(config.get("TRADING_CLOSE_BATCH", cls.close_batch)),
        )
