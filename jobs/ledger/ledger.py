"""The Ledger: one object with every call, put together from the parts that write and read each area."""

from __future__ import annotations

from .admin import Admin
from .compliance import Compliance
from .events import Events
from .experiments import Experiments
from .locks import Locks
from .payments import Payments
from .plans import Plans
from .reads import Reads
from .recipients import Recipients


class Ledger(Recipients, Payments, Events, Experiments, Compliance, Plans, Admin, Reads, Locks):
    """The campaign ledger on one database. Cheap to make: connects and checks its schema on first use."""
