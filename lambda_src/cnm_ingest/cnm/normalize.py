"""Lenient input: rewrite what real providers send into what the CNM schema accepts, when the meaning is certain.

PO.DAAC's CNM tasks do not validate against the schema, so providers' automation
sends values the schema rejects although their meaning is not in doubt. Each
rewrite below is one of those; everything else is left for the schema to reject.

==========================  ===================================  ==========================
field                       sent                                 becomes
==========================  ===================================  ==========================
date-times (*Time)          ``2022-03-09T23:02:25.262061``        ``...262061Z`` (read as UTC)
                            ``2020-08-15 00:56:55``              ``2020-08-15T00:56:55Z``
``version``                 ``v1.0``, ``1.6``, ``1.5.0``, ``1.1``   ``1.0``, ``1.6.0``, ``1.5``, ``1.1``
``checksumType``            ``SHA-512``, ``sha256``, ``MD5``        ``SHA512``, ``SHA256``, ``md5``
``checksum-type`` (key)     Cumulus's example records            ``checksumType``
``type`` / ``dataProcessingType``  ``Data``, ``FORWARD``          ``data``, ``forward``
``size``                    ``"96772640"`` (digits only)           ``96772640``
``uri``                     surrounding white space              trimmed (as PO.DAAC does), except
                                                                 at the end of an ``s3://`` URI (part
                                                                 of the key: keys are taken literally)
==========================  ===================================  ==========================

Not rewritten (ambiguous, so the schema rejects them): a date without a time,
a time that is not a real calendar time, a missing ``submissionTime`` or
``version``, an unknown checksum algorithm, a negative or fractional size.

The input is never modified: changed containers are copied, the rest is shared.
"""

from __future__ import annotations

import re
from datetime import date, time
from typing import Any

DATE_TIME_FIELDS = ("submissionTime", "receivedTime", "processCompleteTime")
VERSIONS = ("1.0", "1.1", "1.2", "1.3", "1.4", "1.4.1", "1.5", "1.5.1", "1.6.0", "1.6.1")
CHECKSUM_TYPES = {"MD5": "md5", "SHA1": "SHA1", "SHA2": "SHA2", "SHA256": "SHA256", "SHA512": "SHA512"}
FILE_TYPES = ("data", "browse", "metadata", "ancillary", "linkage")
PROCESSING_TYPES = ("forward", "reprocessing")
NOTE_VALUE_CHARS = 64  # values quoted in notes are cut, so a hostile value cannot flood the logs

_DATE_TIME = re.compile(  # ASCII digits only: \d would also match other scripts' digits
    r"(?P<date>(?P<y>\d{4})-(?P<mo>\d{2})-(?P<d>\d{2}))[Tt ](?P<time>(?P<h>\d{2}):(?P<mi>\d{2}):(?P<s>\d{2})(?:\.\d+)?)"
    r"(?P<offset>[Zz]|[+-]\d{2}:\d{2})?",
    re.ASCII,
)
_VERSION = re.compile(r"[vV]?(\d{1,3}(?:\.\d{1,3}){0,3})", re.ASCII)
_SEPARATORS = re.compile(r"[\s_-]")


def _quote(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= NOTE_VALUE_CHARS else text[: NOTE_VALUE_CHARS - 3] + "..."


def _key(version: str) -> tuple[int, ...]:
    parts = [int(p) for p in version.split(".")]
    while len(parts) > 1 and parts[-1] == 0:
        parts.pop()
    return tuple(parts)


_VERSION_BY_KEY = {_key(v): v for v in VERSIONS}
# Values that version() and checksum_type() give back unchanged (each is the only spelling of its key).
SPELLED_VERSIONS = frozenset(VERSIONS)
_SPELLED_CHECKSUM_TYPES = frozenset(CHECKSUM_TYPES.values())


def date_time(value: Any) -> str | None:
    """The RFC 3339 form of ``value`` when it is a real date-time, offset-less ones read as UTC; else None."""
    if not isinstance(value, str):
        return None
    m = _DATE_TIME.fullmatch(value.strip())
    if m is None:
        return None
    try:
        date(int(m["y"]), int(m["mo"]), int(m["d"]))
        time(int(m["h"]), int(m["mi"]), min(int(m["s"]), 59))  # a leap second (:60) is valid RFC 3339
    except ValueError:
        return None
    if int(m["s"]) > 60:
        return None
    return f"{m['date']}T{m['time']}{m['offset'] or 'Z'}"


def written_as_date_time_writes(value: Any) -> bool:
    """True when ``value`` is in the form :func:`date_time` writes (``T``, an offset, no white space).

    date_time() gives such a value back, or None when it is not a real date:
    either way there is nothing to rewrite, and the common case skips the
    calendar check.
    """
    if not isinstance(value, str):
        return False
    m = _DATE_TIME.fullmatch(value)
    return m is not None and value[10] == "T" and m["offset"] is not None


def version(value: Any) -> str | None:
    """The schema's spelling of a CNM version (``v1.0`` -> ``1.0``, ``1.6`` -> ``1.6.0``), or None."""
    if isinstance(value, str) and value in SPELLED_VERSIONS:  # already the schema's spelling (the common case)
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        return None
    m = _VERSION.fullmatch(value.strip())
    return _VERSION_BY_KEY.get(_key(m[1])) if m else None


def checksum_type(value: Any) -> str | None:
    """The schema's spelling of a checksum algorithm (``SHA-512`` -> ``SHA512``), or None."""
    if not isinstance(value, str):
        return None
    if value in _SPELLED_CHECKSUM_TYPES:  # already the schema's spelling (the common case)
        return value
    return CHECKSUM_TYPES.get(_SEPARATORS.sub("", value).upper())


def _enum(value: Any, allowed: tuple[str, ...]) -> str | None:
    if isinstance(value, str) and value in allowed:  # already the schema's spelling (the common case)
        return value
    if isinstance(value, str) and value.strip().lower() in allowed:
        return value.strip().lower()
    return None


class _Rewriter:
    def __init__(self) -> None:
        self.notes: list[str] = []

    def set(self, obj: dict[str, Any], key: str, new: Any, where: str, why: str) -> dict[str, Any]:
        """``obj`` (at path ``where``) with ``key`` = ``new`` (a copy when it changes), noting the change."""
        old = obj.get(key)
        if new is None or (new == old and type(new) is type(old)):
            return obj
        self.notes.append(f"{where}.{key}: {_quote(old)} -> {_quote(new)} ({why})")
        return {**obj, key: new}

    def file(self, f: Any, where: str) -> Any:
        if not isinstance(f, dict):
            return f
        if "checksumType" not in f and "checksum-type" in f:
            f = {**f, "checksumType": f["checksum-type"]}
            self.notes.append(f"{where}: 'checksum-type' read as 'checksumType'")
        # Already the schema's spelling, or absent (the common case): nothing to rewrite, no call made.
        value = f.get("checksumType")
        if value is not None and not (isinstance(value, str) and value in _SPELLED_CHECKSUM_TYPES):
            f = self.set(f, "checksumType", checksum_type(value), where, "algorithm spelling")
        value = f.get("type")
        if value is not None and not (isinstance(value, str) and value in FILE_TYPES):
            f = self.set(f, "type", _enum(value, FILE_TYPES), where, "case")
        size = f.get("size")
        if isinstance(size, str) and size.isascii() and size.isdigit() and len(size) <= 20:
            f = self.set(f, "size", int(size), where, "a number sent as a string")
        uri = f.get("uri")
        if isinstance(uri, str) and uri.strip() != uri:
            # An S3 key may end in white space: only what precedes the scheme is certain to be noise (issue 8:
            # keys are taken literally). Other schemes cannot end in a bare space, so both ends are trimmed.
            trimmed = uri.lstrip() if uri.lstrip()[:5].lower() == "s3://" else uri.strip()
            if trimmed != uri:
                f = self.set(f, "uri", trimmed, where, "white space around the URI")
        return f

    def files(self, files: Any, where: str) -> Any:
        if not isinstance(files, list):
            return files
        out = files
        for i, f in enumerate(files):
            new = self.file(f, f"{where}[{i}]")
            if new is not f:
                if out is files:
                    out = list(files)  # copied on the first change only
                out[i] = new
        return out

    def filegroup(self, group: Any, where: str) -> Any:
        if not isinstance(group, dict) or "files" not in group:
            return group
        files = self.files(group["files"], f"{where}.files")
        return group if files is group["files"] else {**group, "files": files}

    def product(self, product: Any) -> Any:
        if not isinstance(product, dict):
            return product
        p = self.set(
            product,
            "dataProcessingType",
            _enum(product.get("dataProcessingType"), PROCESSING_TYPES),
            "$.product",
            "case",
        )
        if "files" in p:
            files = self.files(p["files"], "$.product.files")
            p = p if files is p["files"] else {**p, "files": files}
        groups = p.get("filegroups")
        if isinstance(groups, list):
            new_groups = [self.filegroup(g, f"$.product.filegroups[{i}]") for i, g in enumerate(groups)]
            if any(a is not b for a, b in zip(new_groups, groups, strict=True)):
                p = {**p, "filegroups": new_groups}
        return p


def normalize_notification(doc: Any) -> tuple[Any, list[str]]:
    """``(notification, notes)``: ``doc`` with the unambiguous rewrites above applied, and one note per rewrite.

    ``doc`` itself is not modified; anything that is not a JSON object is returned as it is.
    """
    if not isinstance(doc, dict):
        return doc, []
    r = _Rewriter()
    out = r.set(doc, "version", version(doc.get("version")), "$", "version spelling")
    for key in DATE_TIME_FIELDS:
        value = out.get(key)
        if value is None or written_as_date_time_writes(value):
            continue
        fixed = date_time(value)
        if fixed is not None and fixed != value:
            sent = _DATE_TIME.fullmatch(str(value).strip())
            why = "no UTC offset: read as UTC" if sent is not None and not sent["offset"] else "date-time form"
            out = r.set(out, key, fixed, "$", why)
    if "product" in out:
        product = r.product(out["product"])
        if product is not out["product"]:
            out = {**out, "product": product}
    return out, r.notes
