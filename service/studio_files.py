"""The storyboards folder as the studio sees it: live files, drafts and a history of saves.

``storyboards/<name>.yaml`` is what campaigns render. The studio writes it only
with a valid text, atomically (a temporary file in the same folder, then
``os.replace``), and keeps beside it, in hidden folders the renderer never reads:

- ``.drafts/<name>.yaml``: the last text saved while it had problems; the live
  file is left as it was until a valid version is saved, which clears the draft;
- ``.history/<name>/<stamp>.yaml`` and ``<stamp>.diff``: each of the last
  :data:`HISTORY_KEEP` saves, the text saved and its unified diff to the text it replaced.

Names are plain words (letters, digits, ``_`` and ``-``): a name is never a path.
"""

from __future__ import annotations

import difflib
import hashlib
import os
import re
import threading
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
ENTRY_RE = re.compile(r"^\d{8}T\d{12}Z(?:-\d{1,3})?$")
HISTORY_KEEP = 20
DRAFTS = ".drafts"
HISTORY = ".history"


def text_digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Entry:
    """One save in a storyboard's history."""

    id: str
    time: datetime
    added: int
    removed: int


@dataclass(frozen=True)
class Saved:
    changed: bool  # False when the text was the live one already: nothing written, no history entry
    time: datetime
    digest: str


class Conflict(Exception):
    """The live file changed since the editor opened it (someone else saved)."""

    def __init__(self, digest: str) -> None:
        super().__init__("the storyboard was saved by someone else since you opened it")
        self.digest = digest


class StoryboardFolder:
    """Reads and writes one folder of storyboards; one lock per folder keeps saves and histories in order."""

    _locks: dict[str, threading.Lock] = {}
    _locks_guard = threading.Lock()

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        with self._locks_guard:
            self._lock = self._locks.setdefault(str(self.root.resolve()), threading.Lock())

    # --- names and paths ------------------------------------------------------------------------

    def path(self, name: str) -> Path | None:
        """The live file of ``name``, or None when ``name`` is not a storyboard here (or not a name at all)."""
        if not NAME_RE.fullmatch(name):
            return None
        path = self.root / f"{name}.yaml"
        try:
            if not path.is_file() or path.resolve().parent != self.root.resolve():
                return None  # a symlink out of the folder is not one of ours
        except OSError:
            return None
        return path

    def names(self) -> list[str]:
        return sorted(p.stem for p in self.root.glob("*.yaml") if self.path(p.stem) is not None)

    def read(self, name: str) -> str:
        path = self.path(name)
        if path is None:
            raise FileNotFoundError(name)
        return path.read_text(encoding="utf-8")

    def saved_at(self, name: str) -> datetime:
        path = self.path(name)
        if path is None:
            raise FileNotFoundError(name)
        return datetime.fromtimestamp(path.stat().st_mtime, UTC)

    # --- drafts ---------------------------------------------------------------------------------

    def _draft_path(self, name: str) -> Path:
        return self.root / DRAFTS / f"{name}.yaml"

    def draft(self, name: str) -> tuple[str, datetime] | None:
        path = self._draft_path(name)
        try:
            return path.read_text(encoding="utf-8"), datetime.fromtimestamp(path.stat().st_mtime, UTC)
        except FileNotFoundError:
            return None

    def save_draft(self, name: str, text: str) -> datetime:
        if self.path(name) is None:
            raise FileNotFoundError(name)
        path = self._draft_path(name)
        with self._lock:
            path.parent.mkdir(exist_ok=True)
            write_atomically(path, text)
        return datetime.fromtimestamp(path.stat().st_mtime, UTC)

    def discard_draft(self, name: str) -> bool:
        try:
            self._draft_path(name).unlink()
        except FileNotFoundError:
            return False
        return True

    # --- saving and history ---------------------------------------------------------------------

    def save(self, name: str, text: str, *, base: str | None = None, keep_draft: bool = False) -> Saved:
        """Replace the live file with ``text`` (already validated), record the save, clear the draft.

        ``base`` is the digest of the live text the editor started from; when the live
        file has changed since, :class:`Conflict` is raised and nothing is written.
        """
        path = self.path(name)
        if path is None:
            raise FileNotFoundError(name)
        with self._lock:
            before = path.read_text(encoding="utf-8")
            if base is not None and base != text_digest(before) and text != before:
                raise Conflict(text_digest(before))
            now = datetime.now(UTC)
            changed = text != before
            if changed:
                write_atomically(path, text, mode=path.stat().st_mode & 0o777)
                self._record(name, before, text, now)
            if not keep_draft:
                self.discard_draft(name)
        return Saved(changed=changed, time=now, digest=text_digest(text))

    def create(self, name: str, text: str) -> Saved:
        """A new storyboard ``name`` with ``text``; :class:`FileExistsError` when the name is taken.

        Written beside its place and linked into it, so no reader ever sees half of it and two
        people creating the same name at once cannot both succeed."""
        if not NAME_RE.fullmatch(name):
            raise ValueError(name)
        path = self.root / f"{name}.yaml"
        with self._lock:
            tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.tmp")
            write_atomically(tmp, text)
            try:
                os.link(tmp, path)
            finally:
                tmp.unlink(missing_ok=True)
            now = datetime.now(UTC)
            self._record(name, "", text, now)
        return Saved(changed=True, time=now, digest=text_digest(text))

    def rename(self, name: str, new: str) -> None:
        """Give storyboard ``name`` (its draft and its history too) the name ``new``;
        :class:`FileExistsError` when ``new`` is taken, :class:`FileNotFoundError` when ``name`` is gone."""
        path = self.path(name)
        if path is None or not NAME_RE.fullmatch(new):
            raise FileNotFoundError(name)
        target = self.root / f"{new}.yaml"
        with self._lock:
            os.link(path, target)  # fails when taken: nothing is ever overwritten
            path.unlink()
            draft = self._draft_path(name)
            if draft.is_file():
                os.replace(draft, self._draft_path(new))
            history = self._history_dir(name)
            if history.is_dir() and not self._history_dir(new).exists():
                os.replace(history, self._history_dir(new))

    def _history_dir(self, name: str) -> Path:
        return self.root / HISTORY / name

    def _record(self, name: str, before: str, after: str, now: datetime) -> None:
        folder = self._history_dir(name)
        folder.mkdir(parents=True, exist_ok=True)
        stamp = now.strftime("%Y%m%dT%H%M%S%fZ")
        entry, n = stamp, 1
        while (folder / f"{entry}.yaml").exists():
            entry, n = f"{stamp}-{n}", n + 1
        diff = "".join(difflib.unified_diff(before.splitlines(keepends=True), after.splitlines(keepends=True),
                                            fromfile=f"{name}.yaml (before)", tofile=f"{name}.yaml (saved)"))
        write_atomically(folder / f"{entry}.diff", diff)
        write_atomically(folder / f"{entry}.yaml", after)
        for old in self._entry_ids(name)[HISTORY_KEEP:]:
            for suffix in (".yaml", ".diff"):
                (folder / f"{old}{suffix}").unlink(missing_ok=True)

    def _entry_ids(self, name: str) -> list[str]:
        """Newest first."""
        folder = self._history_dir(name)
        if not folder.is_dir():
            return []
        ids = [p.stem for p in folder.glob("*.yaml") if ENTRY_RE.fullmatch(p.stem)]
        return sorted(ids, key=_entry_order, reverse=True)

    def history(self, name: str) -> list[Entry]:
        entries = []
        for entry_id in self._entry_ids(name):
            diff = self.diff(name, entry_id) or ""
            lines = diff.splitlines()
            added = sum(1 for line in lines if line.startswith("+") and not line.startswith("+++"))
            removed = sum(1 for line in lines if line.startswith("-") and not line.startswith("---"))
            entries.append(Entry(id=entry_id, time=_entry_time(entry_id), added=added, removed=removed))
        return entries

    def diff(self, name: str, entry_id: str) -> str | None:
        return self._entry_file(name, entry_id, ".diff")

    def version(self, name: str, entry_id: str) -> str | None:
        return self._entry_file(name, entry_id, ".yaml")

    def _entry_file(self, name: str, entry_id: str, suffix: str) -> str | None:
        if not NAME_RE.fullmatch(name) or not ENTRY_RE.fullmatch(entry_id):
            return None
        try:
            return (self._history_dir(name) / f"{entry_id}{suffix}").read_text(encoding="utf-8")
        except FileNotFoundError:
            return None


def _entry_order(entry_id: str) -> tuple[str, int]:
    stamp, _, n = entry_id.partition("-")
    return stamp, int(n or 0)


def _entry_time(entry_id: str) -> datetime:
    return datetime.strptime(entry_id[:22], "%Y%m%dT%H%M%S%fZ").replace(tzinfo=UTC)


def write_atomically(path: Path, data: str | bytes, mode: int = 0o644) -> None:
    """Write beside the target, flush to disk, then rename over it: readers (in any process) see the old or
    the new file, whole; text goes as UTF-8."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data.encode("utf-8") if isinstance(data, str) else data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)  # the umask may have narrowed it
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
