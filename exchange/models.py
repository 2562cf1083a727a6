"""Every context's models, imported so that ``metadata`` is complete (migrations, checks)."""

from exchange.accounts import models as accounts_models
from exchange.audit import models as audit_models
from exchange.db import Base
from exchange.notifications import models as notifications_models

metadata = Base.metadata

__all__ = ["accounts_models", "audit_models", "metadata", "notifications_models"]
