"""The Ledger: one object with every call, put together from the parts that write and read each area."""

from __future__ import annotations

from .events import Events
from .experiments import Experiments
from .locks import Locks
from .payments import Payments
from .reads import Reads
from .recipients import Recipients


class Ledger(Recipients, Payments, Events, Experiments, Reads, Locks):
    """The campaign ledger on one database. Cheap to make: connects and checks its schema on first use."""
