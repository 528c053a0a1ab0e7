"""The ledger: who was published under which link, what they owe, what they paid, what they did.

SQLAlchemy Core on a SQLite file by default, PostgreSQL when configured. The
schema is versioned by Alembic revisions shipped in ``migrations/``. The
recipients table holds no personal data beyond the customer_id. Every call
runs in its own short transaction. See ``docs/LEDGER.md``.

``schema`` holds the tables, ``migrate`` the revisions' rules and the upgrade
(``billcast db``), ``engine`` the engines and transactions, ``checks`` the
argument checks; the ``Ledger`` is put together from ``recipients``,
``payments``, ``events``, ``experiments``, ``compliance`` (opt-outs, disputes,
held-back recipients), ``plans`` (installment plans), ``admin`` (sign-in attempts and admin
sessions), ``locks`` and ``reads``.
"""

from ..contact import CHANNELS as CHANNELS
from ..contact import DISPUTE_DETAILS_MAX as DISPUTE_DETAILS_MAX
from ..contact import DISPUTE_OUTCOMES as DISPUTE_OUTCOMES
from ..contact import DISPUTE_REASONS as DISPUTE_REASONS
from ..contact import SUPPRESSION_CHANNELS as SUPPRESSION_CHANNELS
from .admin import AdminSession as AdminSession
from .admin import SigninLimits as SigninLimits
from .compliance import ContactState as ContactState
from .compliance import Dispute as Dispute
from .compliance import Suppression as Suppression
from .engine import DEFAULT_URL as DEFAULT_URL
from .events import VISITOR_CHARS as VISITOR_CHARS
from .experiments import Allocated as Allocated
from .experiments import ImportedPayment as ImportedPayment
from .experiments import Result as Result
from .ledger import Ledger as Ledger
from .migrate import SchemaState as SchemaState
from .migrate import head_revision as head_revision
from .migrate import schema_state as schema_state
from .migrate import upgrade_schema as upgrade_schema
from .model import EVENT_KINDS as EVENT_KINDS
from .model import OPTIONS as OPTIONS
from .model import PAYMENT_STATUSES as PAYMENT_STATUSES
from .model import PROVIDERS as PROVIDERS
from .model import RECIPIENT_STATUSES as RECIPIENT_STATUSES
from .model import SOURCES as SOURCES
from .model import LedgerError as LedgerError
from .model import Recipient as Recipient
from .plans import PLAN_STATUSES as PLAN_STATUSES
from .plans import Claim as Claim
from .plans import Installment as Installment
from .plans import Plan as Plan

__all__ = [
    "CHANNELS", "DEFAULT_URL", "DISPUTE_DETAILS_MAX", "DISPUTE_OUTCOMES", "DISPUTE_REASONS", "EVENT_KINDS",
    "OPTIONS", "PAYMENT_STATUSES", "PLAN_STATUSES", "PROVIDERS", "RECIPIENT_STATUSES", "SOURCES",
    "SUPPRESSION_CHANNELS", "VISITOR_CHARS",
    "AdminSession", "Allocated", "Claim", "ContactState", "Dispute", "ImportedPayment", "Installment", "Ledger",
    "LedgerError", "Plan", "Recipient", "Result", "SchemaState", "SigninLimits", "Suppression",
    "head_revision", "schema_state", "upgrade_schema",
]
