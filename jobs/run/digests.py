"""Content hashes: everything that shapes a recipient's outputs, so a rerun skips who has not changed.

A recipient's hash covers the code (:func:`code_digest`), the campaign
(``campaign_hash``), the storyboard's bytes, the record's values, the token and
the variant. The ledger keeps the hash of what was published; a recipient
published with the same hash is :func:`is_unchanged` and is not rendered again.
"""

from __future__ import annotations

import hashlib
import json
from importlib import metadata, resources
from pathlib import Path
from typing import TYPE_CHECKING

from billcast.renderer import ENGINE_VERSION, default_assets_dir

from ..records import Record, record_values

if TYPE_CHECKING:
    from ..ledger import Recipient


def _tree_digest(root: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0" + hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def code_digest(assets: Path | None = None) -> str:
    """The renderer's engine version, the package version, the assets (``None``: the packaged ones) and the
    page builder's files."""
    digest = hashlib.sha256()
    try:
        version = metadata.version("billcast")
    except metadata.PackageNotFoundError:
        version = "0"
    digest.update(f"{version}\0{ENGINE_VERSION}\0".encode())
    digest.update(_tree_digest(assets or default_assets_dir()).encode())
    site_root = Path(str(resources.files("billcast.microsite")))
    for folder in ("templates", "catalogs", "static"):
        digest.update(_tree_digest(site_root / folder).encode())
    return digest.hexdigest()


def recipient_hash(run_digest: str, storyboard_bytes: bytes, record: Record, token: str, variant: str) -> str:
    """One recipient's content hash; ``run_digest`` is the code's and the campaign's, the same for all."""
    values = json.dumps(record_values(record), sort_keys=True, ensure_ascii=False, default=str)
    digest = hashlib.sha256()
    for part in (run_digest.encode(), hashlib.sha256(storyboard_bytes).digest(), values.encode(), token.encode(),
                 variant.encode()):
        digest.update(len(part).to_bytes(8, "big") + part)
    return digest.hexdigest()


def is_unchanged(known: Recipient | None, content_hash: str) -> bool:
    """Whether the ledger shows this recipient published with this very hash: nothing to do for them."""
    return known is not None and known.status == "published" and known.content_hash == content_hash
