"""Secrets kept in a file: made once, mode 0600, and the same for every process that reads them after.

The demo and a service without configured secrets keep theirs this way (the link
secret, the webhook secret of the demo provider, the session key), so every worker
and every restart agrees on them. Production sets them in its configuration instead.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from pathlib import Path

from billcast.renderer import BillcastError


class SecretFileError(BillcastError):
    """A kept secret's file exists but cannot be read as a secret."""


def new_hex_secret() -> str:
    """256 random bits as 64 hex characters."""
    return secrets.token_hex(32)


def kept_secret(path: Path, make: Callable[[], str] = new_hex_secret) -> str:
    """The secret in ``path``, made by ``make`` and written there first if the file does not exist yet.

    The file is written whole under a temporary name and linked into place, never
    replaced: when two processes race, the first secret wins and both read it.
    """
    try:
        return _read(path)
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.fchmod(fd, 0o600)  # whatever the umask
        os.write(fd, (make() + "\n").encode("ascii"))
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.link(temporary, path)
    except FileExistsError:
        pass
    except OSError:  # a file system without hard links
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
    return _read(path)


def _read(path: Path) -> str:
    try:
        value = path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        raise
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else "not ASCII text"
        raise SecretFileError(f"cannot read the kept secret {path} ({reason}); remove it to make a new one") from None
    if not value:
        raise SecretFileError(f"the kept secret {path} is empty; remove it to make a new one")
    return value
