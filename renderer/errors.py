"""Billcast's exceptions: one root, a few kinds that say where the problem is.

Their messages read like a compiler's: ``where: field: what was wrong``.
"""

from __future__ import annotations


class BillcastError(Exception):
    """Root of every error Billcast raises on purpose."""

    exit_code = 1


class SourceError(BillcastError):
    """A problem in a file someone wrote by hand: names the file, the line and the dotted field."""

    exit_code = 2
    unnamed = ""  # what stands for the file when it has no path

    def __init__(self, message: str, *, path: str | None = None, line: int | None = None,
                 field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.path = path
        self.line = line
        self.field = field

    def __str__(self) -> str:
        where = self.path or self.unnamed
        if where and self.line is not None:
            where = f"{where}:{self.line}"
        return ": ".join(part for part in (where, self.field, self.message) if part)


class SourceErrors(SourceError):
    """Every problem of one hand-written file, in file order (``errors``); the first one is also its own."""

    def __init__(self, errors: list[SourceError]) -> None:
        if not errors:
            raise ValueError(f"{type(self).__name__} needs at least one error")
        errors = sorted(errors, key=lambda e: (e.line or 0, e.field or ""))
        first = errors[0]
        super().__init__(first.message, path=first.path, line=first.line, field=first.field)
        self.errors = errors

    def __str__(self) -> str:
        return "\n".join(SourceError.__str__(error) for error in self.errors)

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.errors,))


class StoryboardError(SourceError):
    """A storyboard that cannot be used: names its file, line and dotted field."""

    unnamed = "<storyboard>"


class AssetError(StoryboardError):
    """An asset a storyboard names is missing, unreadable or outside ``assets/``."""


class RecordError(BillcastError):
    """A customer record that breaks the contract: names its line, id and field."""

    exit_code = 3

    def __init__(self, message: str, *, line: int | None = None, customer_id: str | None = None,
                 field: str | None = None, source: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.line = line
        self.customer_id = customer_id
        self.field = field
        self.source = source

    def __str__(self) -> str:
        where = self.source or "<record>"
        if self.line is not None:
            where = f"{where}:{self.line}"
        parts = [where]
        if self.customer_id:
            parts.append(f"customer {self.customer_id}")
        if self.field:
            parts.append(self.field)
        return ": ".join(parts) + f": {self.message}"


class EncodeError(BillcastError):
    """The encoder failed: carries the command line and the tail of its stderr."""

    exit_code = 4

    def __init__(self, message: str, *, argv: list[str] | None = None, stderr_tail: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.argv = list(argv or [])
        self.stderr_tail = stderr_tail

    def __str__(self) -> str:
        text = self.message
        if self.stderr_tail:
            text += "\n" + self.stderr_tail
        return text


class PublishError(BillcastError):
    """The object store cannot be reached or written: names the store and key."""

    exit_code = 5


class PaymentError(BillcastError):
    """A payment setting or the payment provider failed."""

    exit_code = 6


class SettingsError(BillcastError):
    """A setting (an option, an environment variable, a configuration key) is missing or invalid: names it."""

    exit_code = 10

    def __init__(self, setting: str, message: str) -> None:
        super().__init__(f"{setting}: {message}")
        self.setting = setting
        self.message = message
