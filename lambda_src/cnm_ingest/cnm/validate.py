"""CNM schema validation: a notification or a response against the published CNM JSON Schema.

Validation uses the published CNM JSON Schema (bundled, see ``schema/``),
compiled with fastjsonschema (Powertools' ``validate`` compiles the schema
again on every call: 98% of a record's CPU). The published schema is a
``oneOf`` of a notification and a response; we derive one schema for each,
so a response is rejected as a notification and the other way round, with
the error naming the branch that failed.

The compiled validators are fastjsonschema's own code for those schemas
(``tools/gen_validators.py`` writes them), kept in ``<kind>_validator.py``
(``python tools/gen_validators.py`` writes them; a test fails when they are
not what the schema and the pinned fastjsonschema give) and imported on
first use: compiling at run time cost every cold start about 15 ms on its
first record, importing the module under 1 ms.
"""

from __future__ import annotations

import copy
import functools
import importlib
import json
from collections.abc import Callable
from importlib import resources
from typing import Any

from cnm_ingest.cnm import normalize
from cnm_ingest.cnm.notification import product_files
from cnm_ingest.errors import CnmValidationError

SCHEMA_FILE = "cnm-schema-1.6.1.json"
SCHEMA_SOURCE = "podaac/cloud-notification-message-schema release 1.6.1 (cumulus_sns_schema.json)"


@functools.lru_cache(maxsize=1)
def published_schema() -> dict[str, Any]:
    text = resources.files(__package__).joinpath("schema", SCHEMA_FILE).read_text(encoding="utf-8")
    return json.loads(text)


def _branch(index: int) -> dict[str, Any]:
    schema = copy.deepcopy(published_schema())
    branch = schema.pop("oneOf")[index]
    schema.update(branch)
    return schema


@functools.lru_cache(maxsize=1)
def notification_schema() -> dict[str, Any]:
    return _branch(0)


@functools.lru_cache(maxsize=1)
def response_schema() -> dict[str, Any]:
    return _branch(1)


def fast_notification_schema() -> dict[str, Any]:
    """:func:`notification_schema` rewritten to accept exactly the same documents without exceptions on the good path.

    fastjsonschema compiles ``not``, ``oneOf`` and a failing first ``anyOf``
    branch into raise-and-catch, three exceptions per valid notification (a
    third of the validation time). The rewrite, checked document by document
    against the published schema in ``tests/unit/ingest/test_cnm_schema.py``:

    - ``not: {required: [response]}`` -> ``properties.response: false``
      (present -> invalid, absent -> valid: the same);
    - ``product.oneOf`` of ``required [name, files]`` / ``[name, filegroups]``
      -> ``required [name]``, ``anyOf`` of the two (the common one first), and
      ``dependencies: files -> properties.filegroups: false`` (not both);
    - ``collection.anyOf [string, object]`` -> the object branch first;
    - every ``{"$ref": "#/definitions/..."}`` -> the definition itself (in
      draft-07 a ``$ref`` object means its target): fastjsonschema calls a
      function per ``$ref`` and formats the item's path for each file whether
      or not it fails; inline, a valid file costs a third less.
    """
    schema = copy.deepcopy(notification_schema())
    if schema.pop("not", None) != {"required": ["response"]}:
        raise AssertionError("the published notification branch changed: review fast_notification_schema")
    schema["properties"]["response"] = False
    product = schema["properties"]["product"]
    if product.pop("oneOf") != [{"required": ["name", "files"]}, {"required": ["name", "filegroups"]}]:
        raise AssertionError("the published product.oneOf changed: review fast_notification_schema")
    product["required"] = sorted(set(product.get("required", [])) | {"name"})
    product["anyOf"] = [{"required": ["files"]}, {"required": ["filegroups"]}]
    product["dependencies"] = {"files": {"properties": {"filegroups": False}}}
    collection = schema["properties"]["collection"]
    collection["anyOf"] = sorted(collection["anyOf"], key=lambda b: "$ref" not in b)
    definitions = schema.pop("definitions", {})

    def inline(node: Any) -> Any:
        if isinstance(node, list):
            return [inline(v) for v in node]
        if not isinstance(node, dict):
            return node
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/definitions/"):
            if set(node) != {"$ref"}:
                raise AssertionError(f"a $ref with siblings: review fast_notification_schema ({node})")
            return inline(definitions[ref.removeprefix("#/definitions/")])
        return {k: inline(v) for k, v in node.items()}

    return inline(schema)


VALIDATOR_KINDS: dict[str, Callable[[], dict[str, Any]]] = {
    "notification": fast_notification_schema,
    "response": response_schema,
}


@functools.cache
def compiled(kind: str) -> Callable[[Any], Any]:
    """The compiled validator of ``kind`` (``notification`` or ``response``), imported once per process."""
    if kind not in VALIDATOR_KINDS:
        raise KeyError(kind)
    validator: Callable[[Any], Any] = importlib.import_module(f"{__package__}.{kind}_validator").validate
    return validator


def _validate(message: Any, kind: str) -> dict[str, Any]:
    if not isinstance(message, dict):
        raise CnmValidationError(f"a CNM {kind} must be a JSON object, got {type(message).__name__}")
    validate = compiled(kind)
    try:
        validate(message)
    except Exception as exc:
        from fastjsonschema import JsonSchemaValueException  # imported already, by the validator

        if not isinstance(exc, JsonSchemaValueException):
            raise
        path = exc.path or ["data"]
        where = "$" + "".join(f"[{p}]" if str(p).isdigit() else f".{p}" for p in path[1:])
        raise CnmValidationError(f"not a valid CNM {kind}: {exc.message}", where) from None
    return message


def _check_sizes(message: dict[str, Any]) -> None:
    for i, f in enumerate(product_files(message)):
        size = f.get("size")
        if (
            isinstance(size, bool)
            or not isinstance(size, (int, float))
            or (isinstance(size, float) and not size.is_integer())
            or size < 0
        ):
            raise CnmValidationError(
                f"file size {size!r} is not a whole number of bytes >= 0", f"$.product.files[{i}].size"
            )


def validate_notification(message: Any) -> dict[str, Any]:
    """Return ``message`` if it is a valid CNM notification, else raise CnmValidationError."""
    _validate(message, "notification")
    _check_sizes(message)
    return message


_FILE_TYPES = frozenset(normalize.FILE_TYPES)
_CHECKSUM_TYPES = frozenset(normalize.CHECKSUM_TYPES.values())


def _one_of(value: Any, spellings: frozenset[str] | tuple[str, ...]) -> bool:
    return type(value) is str and value in spellings


@functools.cache
def _schema_date_time() -> Callable[[str], Any]:
    """The ``format: date-time`` check of the compiled notification validator (its own regular expression)."""
    module = importlib.import_module(f"{__package__}.notification_validator")
    match: Callable[[str], Any] = module.REGEX_PATTERNS["date-time_re_pattern"].match
    return match


def _settled_header(doc: dict[str, Any]) -> bool:
    """The notification's own fields: version, identifier, collection, provider, trace and date-times.

    Every date-time field present is a string that the schema's date-time check
    and the normaliser both leave as it is. (Optional fields are tested with
    ``in`` and read by index, not with ``get``: a method call each, per record.)
    """
    version, collection = doc.get("version"), doc.get("collection")
    if not (
        type(version) is str
        and version in normalize.SPELLED_VERSIONS
        and type(doc.get("identifier")) is str
        and "submissionTime" in doc
        and (
            type(collection) is str
            or (
                type(collection) is dict
                and type(collection.get("name")) is str
                and type(collection.get("version")) is str
            )
        )
        and ("provider" not in doc or type(doc["provider"]) is str)
        and ("trace" not in doc or type(doc["trace"]) is str)
    ):
        return False
    date_time = _schema_date_time()
    for key in normalize.DATE_TIME_FIELDS:
        if key in doc:
            value = doc[key]
            if type(value) is not str or not normalize.written_as_date_time_writes(value) or not date_time(value):
                return False
    return True


def _settled_product(product: Any) -> bool:
    """``product``: a name, ``files`` (not ``filegroups``), optional version and processing type; each file of a
    known type, with a name, a whole size >= 0 and a URI without outer blanks."""
    if type(product) is not dict or "filegroups" in product or type(product.get("name")) is not str:
        return False
    if "dataProcessingType" in product and not _one_of(product["dataProcessingType"], normalize.PROCESSING_TYPES):
        return False
    files = product.get("files")
    if type(files) is not list or ("dataVersion" in product and type(product["dataVersion"]) is not str):
        return False
    for f in files:
        if not (
            type(f) is dict
            and _one_of(f.get("type"), _FILE_TYPES)
            and "checksum-type" not in f
            and type(f.get("name")) is str
            and type(size := f.get("size")) is int
            and size >= 0
            and type(uri := f.get("uri")) is str
            and uri.strip() == uri
            and ("checksumType" not in f or _one_of(f["checksumType"], _CHECKSUM_TYPES))
            and ("checksum" not in f or type(f["checksum"]) is str)
            and ("subtype" not in f or type(f["subtype"]) is str)
        ):
            return False
    return True


def is_settled_notification(doc: Any) -> bool:
    """True only for a notification that :func:`~cnm_ingest.cnm.normalize.normalize_notification` gives back as it is
    (the same object, no note) and :func:`validate_notification` accepts: the common record, checked in one pass.

    False means "not known": the caller takes the general path (normalise, then
    validate), which rewrites or rejects. Every test here is one of the two
    paths' own (the same constants, the same date-time checks), made stricter
    where that is simpler: exact ``str``/``dict``/``list``/``int`` types, a
    ``size`` that is an ``int`` >= 0, ``files`` (not ``filegroups``), no
    ``checksum-type`` key. ``tests/unit/ingest/test_settled_notification.py``
    checks the promise on mutated notifications.
    """
    if type(doc) is not dict or "response" in doc:
        return False
    return _settled_header(doc) and _settled_product(doc.get("product"))


def normalize_and_validate(doc: Any) -> dict[str, Any]:
    """:func:`~cnm_ingest.cnm.normalize.normalize_notification` (notes dropped), then :func:`validate_notification`;
    a notification that needs neither (:func:`is_settled_notification`) is given back as it is."""
    if is_settled_notification(doc):
        return doc
    return validate_notification(normalize.normalize_notification(doc)[0])


def validate_response(message: Any) -> dict[str, Any]:
    """Return ``message`` if it is a valid CNM response, else raise CnmValidationError."""
    return _validate(message, "response")
