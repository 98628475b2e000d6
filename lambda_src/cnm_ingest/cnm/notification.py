"""Reading a CNM notification's fields."""

from __future__ import annotations

from typing import Any


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
