"""The Ledger: one object with every call, put together from the parts that write and read each area."""

from __future__ import annotations

from .events import Events
from .experiments import Experiments
from .payments import Payments
from .reads import Reads
from .recipients import Recipients


class Ledger(Recipients, Payments, Events, Experiments, Reads):
    """The campaign ledger on one database. Cheap to make: connects and migrates on first use."""
