"""The log on stderr: ``text`` (a line a person reads) or ``json`` (one object a line), and never personal data.

The service logs routes and keyed token hashes, not paths or addresses
(``billcast.service.access``). As a second line of defence every record is
scrubbed as it is formatted: a token in a page, pay, beacon or checkout path
becomes ``<token>``, any IP address becomes ``<address>``, and the values a
record names in its ``redact`` field are removed wherever they appear (its
traceback included). That covers what the libraries under us log (gunicorn's
"Invalid request from ip=...", a traceback naming a URL).
"""

from __future__ import annotations

import ipaddress
import json
import logging
import re
import sys
from collections.abc import Iterable
from datetime import UTC, datetime

FORMATS = ("text", "json")
# What a request's record carries besides its message (billcast.service.access.fields).
FIELDS = ("request_id", "method", "route", "status", "duration_ms", "token_hash")
_TOKEN_PATH = re.compile(r"(/(?:r|pay|e|demo/checkout)/)(?!<token>)[^/\s?#\"'<>]+")
_IPV4 = re.compile(r"(?<![\w.])\d{1,3}(?:\.\d{1,3}){3}(?![\w.])")
_IPV6 = re.compile(r"(?<![\w:.])(?=[0-9A-Fa-f:.]*::?[0-9A-Fa-f])[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7}"
                   r"(?:\.\d{1,3}){0,3}(?![\w:])")


def _address(match: re.Match[str]) -> str:
    try:
        ipaddress.ip_address(match.group(0))
    except ValueError:
        return match.group(0)
    return "<address>"


def redact(text: str, values: Iterable[str] = ()) -> str:
    """``text`` without tokens in URL paths, IP addresses, or any of ``values``."""
    for value in values:
        if value:
            text = text.replace(value, "<token>")
    text = _TOKEN_PATH.sub(r"\1<token>", text)
    text = _IPV4.sub(_address, text)
    return _IPV6.sub(_address, text)


def _values(record: logging.LogRecord) -> tuple[str, ...]:
    values = getattr(record, "redact", ())
    return tuple(v for v in values if isinstance(v, str)) if isinstance(values, (tuple, list)) else ()


class TextFormatter(logging.Formatter):
    """``2026-11-20T09:30:00.123Z INFO billcast.access: GET /pay/<token> 303 4.1 ms request_id=... token_hash=...``"""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:  # noqa: N802
        return _timestamp(record)

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        extra = " ".join(f"{name}={getattr(record, name)}" for name in ("request_id", "token_hash")
                         if getattr(record, name, None) is not None)
        if extra:
            head, sep, rest = line.partition("\n")
            line = f"{head} {extra}{sep}{rest}"
        return redact(line, _values(record))


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time, level, logger, message, the request's fields, the traceback if any."""

    def format(self, record: logging.LogRecord) -> str:
        values = _values(record)
        out: dict[str, object] = {"time": _timestamp(record), "level": record.levelname, "logger": record.name,
                                  "message": redact(record.getMessage(), values)}
        for name in FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                out[name] = value
        if record.exc_info:
            out["exception"] = redact(self.formatException(record.exc_info), values)
        return json.dumps(out, ensure_ascii=False, default=str)


def _timestamp(record: logging.LogRecord) -> str:
    return datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def formatter(kind: str) -> logging.Formatter:
    if kind not in FORMATS:
        raise ValueError(f"log format must be one of {', '.join(FORMATS)}, got {kind!r}")
    return JsonFormatter() if kind == "json" else TextFormatter()


def configure_logging(kind: str, level: int) -> None:
    """One handler on stderr for every logger, in ``kind``'s format; the development server's request lines and
    Alembic's set-up chatter off."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter(kind))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    logging.getLogger("werkzeug").setLevel(max(level, logging.WARNING))  # its request lines name paths and addresses
    logging.getLogger("alembic").setLevel(max(level, logging.WARNING))  # its plugin set-up, not news
