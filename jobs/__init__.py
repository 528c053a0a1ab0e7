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
