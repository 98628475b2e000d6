"""A CNM notification's fields, read in one place.

:class:`Notification` is a valid, normalised notification read once (by the
consumer after :func:`cnm_ingest.cnm.validate.normalize_and_validate`, and by
TranslateMessage from the workflow message): routing, execution naming and the
granule all read its attributes, not the JSON. The functions below read the
same fields from a raw (possibly invalid) document, for callers that must cope
with one (a FAILURE response for a record that is not a valid CNM).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

_NO_PRODUCT: dict[str, Any] = {}  # what Notification.read reads of a document without a product object (read only)


# Read for every record: slotted, not frozen (a frozen dataclass's __init__ sets each field through
# object.__setattr__: 1.5 us a record for these seven, against 0.3 us). Nothing changes one once read.
@dataclass(slots=True)
class Notification:
    """A valid, normalised CNM notification (``doc``) and the fields the pipeline reads from it."""

    doc: dict[str, Any]
    identifier: str
    collection: str | None
    version: str | None  # collection.version, else product.dataVersion (as Cumulus reads it)
    provider: Any  # a str in a valid notification; kept as sent, so routing judges what it was given
    product_name: str | None
    submission_time: str | None

    @classmethod
    def read(cls, doc: dict[str, Any]) -> Notification:
        """The fields of ``doc``. For a notification that
        :func:`~cnm_ingest.cnm.validate.normalize_and_validate` accepted, every field the schema requires is there;
        rule matching also reads a bare document (its tests, the CLI's ``rules test``) through this.

        ``collection`` and ``version`` are :func:`collection_name` and :func:`cnm_version`, read here in one
        pass over ``collection`` and ``product`` (once per record: the functions read ``collection`` three times).
        """
        get = doc.get
        product = get("product")
        if not isinstance(product, dict):
            product = _NO_PRODUCT
        coll = get("collection")
        if isinstance(coll, dict):
            name, version = coll.get("name"), coll.get("version")
        else:
            name, version = (coll if isinstance(coll, str) else None), None
        if version is None:
            version = product.get("dataVersion")
        identifier, submitted, product_name = get("identifier"), get("submissionTime"), product.get("name")
        return cls(
            doc,
            identifier if isinstance(identifier, str) else "",
            name,
            version if isinstance(version, str) and version else None,
            get("provider"),
            product_name if isinstance(product_name, str) else None,
            submitted if isinstance(submitted, str) else None,
        )


def collection_name(cnm: dict[str, Any]) -> str | None:
    coll = cnm.get("collection")
    if isinstance(coll, dict):
        return coll.get("name")
    return coll if isinstance(coll, str) else None


def collection_version(cnm: dict[str, Any]) -> str | None:
    """The collection version when the CNM carries one (object form, 1.6.1+)."""
    coll = cnm.get("collection")
    if isinstance(coll, dict):
        return coll.get("version")
    return None


def product_files(cnm: dict[str, Any]) -> list[dict[str, Any]]:
    """All files of the product, from ``files`` or flattened from ``filegroups``."""
    product = cnm.get("product") or {}
    if "files" in product:
        return list(product["files"])
    files: list[dict[str, Any]] = []
    for group in product.get("filegroups", []):
        files.extend(group.get("files", []))
    return files


def can_address_response(message: Any) -> bool:
    """True when a (possibly invalid) message carries enough to address a CNM response."""
    return (
        isinstance(message, dict)
        and isinstance(message.get("identifier"), str)
        and collection_name(message) is not None
    )


def cnm_version(cnm: dict[str, Any]) -> str | None:
    """The version a CNM is for, as Cumulus reads it: ``collection.version``, else ``product.dataVersion``."""
    version = collection_version(cnm)
    if version is None:
        product = cnm.get("product")
        version = product.get("dataVersion") if isinstance(product, dict) else None
    return version if isinstance(version, str) and version else None
