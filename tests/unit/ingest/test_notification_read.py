"""Notification.read, read once a record on the consumer's path, gives what the field readers of
``cnm_ingest.cnm.notification`` give, for every shape of document (it reads ``collection`` and ``product``
in one pass where the readers read ``collection`` three times)."""

from __future__ import annotations

import itertools

from cnm_ingest.cnm import notification

COLLECTIONS = [
    {"name": "C", "version": "1"},
    {"name": "C", "version": ""},
    {"name": "C", "version": None},
    {"name": "C", "version": 1},
    {"name": "C"},
    {"name": 7, "version": "2"},
    {},
    "C",
    "",
    7,
    None,
    ["C"],
    "missing",
]
PRODUCTS = [
    {"name": "p", "dataVersion": "9"},
    {"name": "p", "dataVersion": ""},
    {"name": "p", "dataVersion": 9},
    {"name": 5},
    {},
    [],
    "p",
    None,
    "missing",
]
SCALARS = ["g", "", 0, None, ["g"], "missing"]


def documents():
    for coll, product, ident, provider, submitted in itertools.product(
        COLLECTIONS, PRODUCTS, SCALARS, [*SCALARS[:3], "missing"], ["2024-01-02T03:04:05Z", 5, "missing"]
    ):
        doc = {
            "collection": coll,
            "product": product,
            "identifier": ident,
            "provider": provider,
            "submissionTime": submitted,
        }
        yield {k: v for k, v in doc.items() if v != "missing"}


def test_read_gives_what_the_field_readers_give():
    count = 0
    for doc in documents():
        note = notification.Notification.read(doc)
        product = doc.get("product")
        name = product.get("name") if isinstance(product, dict) else None
        assert note.doc is doc
        assert note.collection == notification.collection_name(doc), doc
        assert note.version == notification.cnm_version(doc), doc
        assert note.identifier == (doc["identifier"] if isinstance(doc.get("identifier"), str) else ""), doc
        assert note.provider == doc.get("provider"), doc
        assert note.product_name == (name if isinstance(name, str) else None), doc
        submitted = doc.get("submissionTime")
        assert note.submission_time == (submitted if isinstance(submitted, str) else None), doc
        count += 1
    assert count == len(COLLECTIONS) * len(PRODUCTS) * len(SCALARS) * 4 * 3


def test_a_document_without_a_product_reads_none_of_its_fields_and_changes_nothing():
    doc = {"collection": {"name": "C"}, "identifier": "g"}
    note = notification.Notification.read(doc)
    assert (note.version, note.product_name) == (None, None)
    assert doc == {"collection": {"name": "C"}, "identifier": "g"}
    assert notification.Notification.read({"product": {"dataVersion": "3"}}).version == "3"  # nothing kept between
