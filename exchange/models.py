"""Every context's models, imported so that ``metadata`` is complete (migrations, checks)."""

from exchange.accounts import models as accounts_models
from exchange.apiplatform import models as apiplatform_models
from exchange.audit import models as audit_models
from exchange.contracts import models as contracts_models
from exchange.db import Base
from exchange.demand import models as demand_models
from exchange.listings import models as listings_models
from exchange.notifications import models as notifications_models
from exchange.payments import models as payments_models
from exchange.reporting import models as reporting_models
from exchange.trading import models as trading_models

metadata = Base.metadata

__all__ = [
    "accounts_models",
    "apiplatform_models",
    "audit_models",
    "contracts_models",
    "demand_models",
    "listings_models",
    "metadata",
    "notifications_models",
    "reporting_models",
    "payments_models",
    "trading_models",
]
