"""Billcast jobs: customer records, campaigns, and the batch that renders and publishes them."""

from .records import Bill as Bill
from .records import BillLine as BillLine
from .records import Debt as Debt
from .records import Invoice as Invoice
from .records import PlanOffer as PlanOffer
from .records import Record as Record
from .records import RecordErrors as RecordErrors
from .records import UsagePeriod as UsagePeriod
from .records import amount_due as amount_due
from .record_files import load_record_file as load_record_file
from .record_files import load_records as load_records
from .records import parse_record as parse_record
from .records import record_values as record_values
from .storyboard_check import Sample as Sample
from .storyboard_check import check_storyboard as check_storyboard
from .storyboard_check import check_storyboard_file as check_storyboard_file

# Campaign, ledger, store and run pull in SQLAlchemy and boto3: re-exported lazily, so the
# commands that do not need them (check, preview, render) start as fast as before.
_LAZY = {
    "Campaign": ".campaign", "CampaignError": ".campaign", "load_campaign": ".campaign",
    "Ledger": ".ledger", "LedgerError": ".ledger",
    "recipient_token": ".links",
    "expire_campaign": ".run", "run_campaign": ".run",
    "ObjectStore": ".store", "open_store": ".store",
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
