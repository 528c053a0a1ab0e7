"""The builder's error: a page that cannot be built, naming the file or catalogue entry at fault."""

from __future__ import annotations

from billcast.renderer import BillcastError


class SiteError(BillcastError):
    """Missing or broken render outputs, catalogues or settings: names the file and field."""

    exit_code = 7

    def __init__(self, message: str, *, path: str | None = None, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.path = path
        self.field = field

    def __str__(self) -> str:
        parts = [part for part in (self.path, self.field) if part]
        return ": ".join([*parts, self.message])
