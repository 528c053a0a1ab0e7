"""Reading records from files: JSON Lines, flattened CSV, or one JSON object.

Numbers are read as exact decimals, never binary floats; a line that is not
valid JSON, a CSV row that does not fit the header, or a customer_id seen
earlier in the batch refuses that one record, and the batch goes on.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

from billcast.renderer import RecordError

from .records import _CUSTOMER_ID, _SNIFF_ID, CSV_JSON_COLUMNS, Record, RecordErrors, _readable_id, parse_record

def load_record_file(path: str | os.PathLike[str]) -> Record:
    """Read one record from a file holding one JSON object (a single render)."""
    source = os.fspath(path)
    return parse_record(_read_json_file(Path(path), source), source=source)


def load_records(path: str | os.PathLike[str]) -> Iterator[Record | RecordErrors]:
    """Stream a batch: each record, or the :class:`RecordErrors` that refuses it, in file order.

    ``.jsonl``/``.ndjson`` (JSON Lines), ``.csv`` (flattened, see the spec) or ``.json``
    (one object). A customer_id seen earlier in the batch refuses the later record.
    Raises :class:`RecordError` only for a problem with the whole file (its type, a CSV
    header), and ``OSError`` when it cannot be read at all.
    """
    for _, item in iter_records(path):
        yield item


def iter_records(path: str | os.PathLike[str]) -> Iterator[tuple[int, Record | RecordErrors]]:
    """Like :func:`load_records`, each item with the line (JSONL) or row (CSV) it starts on."""
    source = os.fspath(path)
    suffix = Path(path).suffix.lower()
    readers = {".jsonl": _jsonl_objects, ".ndjson": _jsonl_objects, ".csv": _csv_objects, ".json": _json_object}
    if suffix not in readers:
        raise RecordError(f"cannot read {suffix or 'a file without a suffix'}: use .jsonl, .ndjson, .csv or .json",
                          source=source)
    seen: dict[str, int] = {}
    for line, item in readers[suffix](Path(path), source):
        yield line, item if isinstance(item, RecordErrors) else _checked(item, line, source, seen)


def _checked(obj: object, line: int, source: str, seen: dict[str, int]) -> Record | RecordErrors:
    """Parse one batch record and refuse it if its customer_id was used earlier in the batch."""
    errors = _duplicate(obj, line, source, seen)
    try:
        record = parse_record(obj, line=line, source=source)  # type: ignore[arg-type]
    except RecordErrors as refused:
        return RecordErrors(errors + refused.errors)
    return RecordErrors(errors) if errors else record


def _duplicate(obj: object, line: int, source: str, seen: dict[str, int]) -> list[RecordError]:
    customer_id = _readable_id(obj)
    if customer_id is None:
        return []
    if customer_id not in seen:
        seen[customer_id] = line
        return []
    return [RecordError(f"is a duplicate: this customer already appears at line {seen[customer_id]}",
                        line=line, customer_id=customer_id, field="customer_id", source=source)]


def _refuse_constant(name: str) -> None:
    raise ValueError(f"{name} is not a JSON number")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj: dict[str, Any] = {}
    for key, value in pairs:
        if key in obj:
            raise ValueError(f"key {key!r} appears twice in one object")
        obj[key] = value
    return obj


def _loads(text: str) -> Any:
    """JSON with exact numbers: decimals as Decimal, no NaN/Infinity, no repeated keys."""
    return json.loads(text, parse_float=Decimal, parse_constant=_refuse_constant, object_pairs_hook=_unique_keys)


def _json_problem(exc: ValueError) -> str:
    if isinstance(exc, json.JSONDecodeError):
        return f"not valid JSON: {exc.msg} (column {exc.colno})"
    return f"not valid JSON: {exc}"


Item = tuple[int, object]  # (line, parsed JSON value or the RecordErrors refusing it)


def _bad(message: str, line: int, source: str, customer_id: str | None = None,
         field: str | None = None) -> RecordErrors:
    return RecordErrors([RecordError(message, line=line, customer_id=customer_id, field=field, source=source)])


def _jsonl_objects(path: Path, source: str) -> Iterator[Item]:
    with path.open("rb") as lines:
        for number, raw in enumerate(lines, start=1):
            sniffed = _SNIFF_ID.search(raw)
            customer_id = sniffed.group(1).decode() if sniffed else None
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                yield number, _bad("not valid UTF-8 text", number, source, customer_id)
                continue
            text = (text.removeprefix("\ufeff") if number == 1 else text).rstrip("\r\n")
            if not text.strip():
                continue
            try:
                yield number, _loads(text)
            except (ValueError, RecursionError) as exc:
                yield number, _bad(_json_problem(exc) if isinstance(exc, ValueError) else "nested too deeply",
                                   number, source, customer_id)


def _json_object(path: Path, source: str) -> Iterator[Item]:
    try:
        yield 1, _read_json_file(path, source)
    except RecordErrors as refused:
        yield 1, refused


def _read_json_file(path: Path, source: str) -> Any:
    try:
        return _loads(path.read_text(encoding="utf-8-sig"))
    except OSError as exc:
        raise RecordErrors([RecordError(f"cannot read: {exc.strerror or exc}", source=source)]) from None
    except UnicodeDecodeError:
        raise RecordErrors([RecordError("not valid UTF-8 text", source=source)]) from None
    except ValueError as exc:
        line = exc.lineno if isinstance(exc, json.JSONDecodeError) else None
        raise RecordErrors([RecordError(_json_problem(exc), line=line, source=source)]) from None


class _CellError(Exception):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field, self.message = field, message


def _csv_objects(path: Path, source: str) -> Iterator[Item]:
    with path.open(encoding="utf-8-sig", errors="surrogateescape", newline="") as handle:
        reader = csv.reader(handle, strict=True)
        header = next(reader, None)
        if header is None:
            return
        _check_header(header, source)
        while True:
            line = reader.line_num + 1
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                yield line, _bad(f"not valid CSV: {exc}", line, source)
                continue
            if any(row):
                yield line, _csv_record(header, row, line, source)


def _check_header(header: list[str], source: str) -> None:
    for index, name in enumerate(header, start=1):
        if not name:
            raise RecordError(f"column {index} of the header has no name", line=1, source=source)
        if header.index(name) != index - 1:
            raise RecordError("column appears twice in the header", line=1, field=name, source=source)


def _csv_record(header: list[str], row: list[str], line: int, source: str) -> object:
    customer_id = dict(zip(header, row, strict=False)).get("customer_id")
    customer_id = customer_id if customer_id and _CUSTOMER_ID.fullmatch(customer_id) else None
    if len(row) != len(header):
        return _bad(f"row has {len(row)} cells, the header has {len(header)}", line, source, customer_id)
    try:
        "".join(row).encode("utf-8")
    except UnicodeEncodeError:
        return _bad("not valid UTF-8 text", line, source, customer_id)
    try:
        return _unflatten(header, row)
    except _CellError as exc:
        return _bad(exc.message, line, source, customer_id, exc.field)


def _unflatten(header: list[str], row: list[str]) -> dict[str, Any]:
    """Dotted columns to nested objects; JSON list columns parsed; empty cells left out."""
    obj: dict[str, Any] = {}
    for name, cell in zip(header, row, strict=True):
        if cell == "":
            continue
        keys = name.split(".", 1) if name.startswith("tags.") else name.split(".")
        place = obj
        for key in keys[:-1]:
            place = place.setdefault(key, {})
            if not isinstance(place, dict):
                raise _CellError(name, f"conflicts with the column {key}")
        if keys[-1] in place:
            raise _CellError(name, "conflicts with another column")
        place[keys[-1]] = _cell_value(name, cell)
    return obj


def _cell_value(name: str, cell: str) -> Any:
    if name not in CSV_JSON_COLUMNS:
        return cell
    try:
        return _loads(cell)
    except ValueError as exc:
        raise _CellError(name, f"cell is {_json_problem(exc)}") from None
