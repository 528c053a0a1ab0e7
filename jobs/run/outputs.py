"""What a run leaves in the campaign's ``out`` folder, each file replaced whole so none is ever half-written.

``manifest.csv`` (a row per recipient: links for the mail merge) and
``errors.csv`` (a row per problem), and per recipient ``recipients/<id>/``
with ``email.html`` and ``qr.png``. Only the driver writes them.
"""

from __future__ import annotations

import csv
import os
import shutil
from pathlib import Path
from typing import Any, TextIO

from billcast.microsite import page_link

from ..mailmerge import email_html, qr_png, qr_target
from ..publish import recipient_prefix
from .worker import Settings, Task

MANIFEST_FIELDS = ("customer_id", "link", "poster_url", "thumb_url", "qr_url", "storyboard", "variant", "status",
                   "wave", "segment", "propensity",  # these three for a campaign's [experiment]
                   "reason", "send_after", "send_before",  # why suppressed or deferred; when it may be sent (UTC)
                   "list_unsubscribe", "list_unsubscribe_post")  # RFC 8058 header values for the message
ERROR_FIELDS = ("line", "customer_id", "field", "message")


class CsvFile:
    """A CSV file written under a temporary name and renamed into place when complete."""

    def __init__(self, path: Path, fields: tuple[str, ...]) -> None:
        self.path = path
        self.tmp = path.with_name(f".{path.name}.tmp")
        self.file: TextIO = self.tmp.open("w", encoding="utf-8", newline="")
        self.writer = csv.DictWriter(self.file, fields)
        self.writer.writeheader()

    def row(self, row: dict[str, Any]) -> None:
        self.writer.writerow(row)

    def close(self) -> None:
        self.file.close()
        os.replace(self.tmp, self.path)


def _local_name(customer_id: str) -> str:
    """A recipient's folder name in ``out/recipients``: the id, kept clear of ``.`` and ``..``."""
    return f"_{customer_id}" if customer_id.startswith(".") else customer_id


def recipient_urls(public_url: str, token: str) -> dict[str, str]:
    """A recipient's page link and the addresses of its poster, email thumbnail and QR code."""
    base = f"{public_url.rstrip('/')}/{recipient_prefix(token)}"
    return {"link": page_link(public_url, token), "poster_url": base + "poster.jpg", "thumb_url": base + "thumb.gif",
            "qr_url": base + "qr.png"}


def has_mail_files(settings: Settings, task: Task) -> bool:
    """Whether the recipient's ``email.html`` is in their local folder (a rerun writes it only if missing)."""
    return (settings.recipients_dir / _local_name(task.record.customer_id) / "email.html").exists()


def write_mail_files(settings: Settings, task: Task, size: tuple[int, int] | None = None,
                     qr: bytes | None = None) -> None:
    """``email.html`` and ``qr.png`` in the recipient's local folder (replaced whole)."""
    folder = settings.recipients_dir / _local_name(task.record.customer_id)
    urls = recipient_urls(settings.public_url, task.token)
    tmp = folder.with_name(f".{folder.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    locale = task.record.locale or settings.site.default_locale
    (tmp / "email.html").write_text(email_html(locale=locale, brand=settings.site.brand_name, link=urls["link"],
                                               thumb_url=urls["thumb_url"], size=size or (480, 270),
                                               optout=settings.site.optout_for(task.token)),
                                    encoding="utf-8")
    if qr is not None:
        (tmp / "qr.png").write_bytes(qr)
    else:
        qr_png(qr_target(settings.public_url, settings.pay_url, task.token, task.amount_due), tmp / "qr.png")
    shutil.rmtree(folder, ignore_errors=True)
    os.replace(tmp, folder)
