"""The one function that puts a built page on disk: all of it, or nothing.

Everything goes into a temporary folder beside ``out``, which is renamed into
place only once every file is complete; an old ``out`` is replaced whole.
"""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path, PurePosixPath

from billcast.renderer import replace_dir

from .build import Site
from .errors import SiteError


def _target(root: Path, name: str) -> Path:
    relative = PurePosixPath(name)
    if relative.is_absolute() or ".." in relative.parts or not relative.parts:
        raise ValueError(f"a site file name must be relative and inside the folder, got {name!r}")
    return root.joinpath(*relative.parts)


def _fill(site: Site, tmp: Path) -> None:
    for name, data in site.files.items():
        path = _target(tmp, name)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    for name, source in site.copies.items():
        path = _target(tmp, name)
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            shutil.copyfile(source, path)
        except FileNotFoundError:
            raise SiteError("is missing: the page needs every render output (render again)",
                            path=str(source)) from None


def write_site(site: Site, out: str | Path) -> Path:
    """Write ``site`` into the folder ``out`` (replacing it whole) and return ``out``."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp-{uuid.uuid4().hex[:8]}")
    tmp.mkdir()
    try:
        _fill(site, tmp)
        replace_dir(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out
