"""``billcast run``: every recipient of a campaign validated, rendered, built and published, resumably.

The driver (``driver``) reads the records in order and records every outcome;
workers (``worker``) render, build and publish recipients in chunks on an
executor; content hashes (``digests``) let a rerun skip whoever is unchanged;
the driver writes the manifest, the errors and the recipients' local files
(``outputs``); ``expire`` takes down pages past their link lifetime.

A chunk may run more than once (its worker died and it was retried
elsewhere); that is safe because publishing is idempotent: the same record
gives the same bytes at the same keys, the page is written last, and a
recipient whose page is live with the right hash is not rendered again. The
driver takes each chunk's result once and records it once. Killed at any
moment, a run leaves no page half-published, and the next run picks up where
it stopped.
"""

from .digests import code_digest as code_digest
from .digests import recipient_hash as recipient_hash
from .driver import Counts as Counts
from .driver import chunk_size as chunk_size
from .driver import run_campaign as run_campaign
from .expire import expire_campaign as expire_campaign
from .worker import Outcome as Outcome
from .worker import Settings as Settings
from .worker import Task as Task
from .worker import work_chunk as work_chunk

# Private, for the tests and benchmarks that reach into a run: the driver's state, the worker's code check.
from .driver import _Run as _Run
from .worker import _own_code as _own_code
