"""CNM messages: decoding, schema validation and field helpers.

Validation uses the published CNM JSON Schema (bundled, see ``schema/``),
compiled with fastjsonschema (Powertools' ``validate`` compiles the schema
again on every call: 98% of a record's CPU). The published schema is a
``oneOf`` of a notification and a response; we derive one schema for each,
so a response is rejected as a notification and the other way round, with
the error naming the branch that failed.

The compiled validators are fastjsonschema's own code for those schemas
(:func:`validator_source`), kept in ``cnm_<kind>_validator.py``
(``python tools/gen_validators.py`` writes them; a test fails when they are
not what the schema and the pinned fastjsonschema give) and imported on
first use: compiling at run time cost every cold start about 15 ms on its
first record, importing the module under 1 ms.

Decoding is strict: whatever JSON text Python would parse but AWS or the
schema cannot carry is a :class:`~cnm_ingest.errors.DecodeError` (a
VALIDATION_ERROR), never an unexpected error: nesting deeper than the
interpreter's recursion limit, integers longer than Python's 4,300-digit
limit, ``NaN``/``Infinity``/``-Infinity`` and numbers that overflow to
infinity (``1e400``), and lone UTF-16 surrogates (``"\\ud800"``), which
cannot be encoded as UTF-8 again. A notification's file ``size`` must be a
finite integer >= 0 (the schema only says "number").
"""

from __future__ import annotations

import base64
import binascii
import copy
import functools
import importlib
import json
import math
import re
from collections.abc import Callable
from importlib import resources
from typing import Any

import orjson

from . import normalize
from .errors import CnmValidationError, DecodeError

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
GENERATED_HEADER = (
    "# Generated by tools/gen_validators.py from {source} with fastjsonschema {version}: do not edit.\n"
    "# The {kind} validator of cnm_ingest.cnm (cnm.validator_source({kind!r})).\n"
    "# fmt: off\n"
)


def validator_source(kind: str) -> str:
    """fastjsonschema's Python code validating a CNM ``kind`` (what ``cnm_<kind>_validator.py`` holds)."""
    import fastjsonschema

    header = GENERATED_HEADER.format(source=SCHEMA_FILE, version=fastjsonschema.VERSION, kind=kind)
    return header + fastjsonschema.compile_to_code(VALIDATOR_KINDS[kind]())


@functools.cache
def compiled(kind: str) -> Callable[[Any], Any]:
    """The compiled validator of ``kind`` (``notification`` or ``response``), imported once per process."""
    if kind not in VALIDATOR_KINDS:
        raise KeyError(kind)
    validator: Callable[[Any], Any] = importlib.import_module(f"{__package__}.cnm_{kind}_validator").validate
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
    module = importlib.import_module(f"{__package__}.cnm_notification_validator")
    match: Callable[[str], Any] = module.REGEX_PATTERNS["date-time_re_pattern"].match
    return match


def is_settled_notification(doc: Any) -> bool:
    """True only for a notification that :func:`~cnm_ingest.normalize.normalize_notification` gives back as it is
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
    get = doc.get
    version = get("version")
    if type(version) is not str or version not in normalize.SPELLED_VERSIONS or type(get("identifier")) is not str:
        return False
    if "submissionTime" not in doc:
        return False
    date_time = _schema_date_time()
    for key in normalize.DATE_TIME_FIELDS:
        if key in doc:
            value = doc[key]
            if type(value) is not str or not normalize.written_as_date_time_writes(value) or not date_time(value):
                return False
    collection = get("collection")
    if type(collection) is dict:
        if type(collection.get("name")) is not str or type(collection.get("version")) is not str:
            return False
    elif type(collection) is not str:
        return False
    for key in ("provider", "trace"):
        if key in doc and type(doc[key]) is not str:
            return False
    product = get("product")
    if type(product) is not dict or "filegroups" in product or type(product.get("name")) is not str:
        return False
    if "dataVersion" in product and type(product["dataVersion"]) is not str:
        return False
    if "dataProcessingType" in product and not _one_of(product["dataProcessingType"], normalize.PROCESSING_TYPES):
        return False
    files = product.get("files")
    if type(files) is not list:
        return False
    for f in files:
        if (
            type(f) is not dict
            or not _one_of(f.get("type"), _FILE_TYPES)
            or type(f.get("name")) is not str
            or type(f.get("size")) is not int
            or f["size"] < 0
            or "checksum-type" in f
        ):
            return False
        uri = f.get("uri")
        if type(uri) is not str or uri.strip() != uri:
            return False
        if "checksumType" in f and not _one_of(f["checksumType"], _CHECKSUM_TYPES):
            return False
        if ("checksum" in f and type(f["checksum"]) is not str) or ("subtype" in f and type(f["subtype"]) is not str):
            return False
    return True


def normalize_and_validate(doc: Any) -> dict[str, Any]:
    """:func:`~cnm_ingest.normalize.normalize_notification` (notes dropped), then :func:`validate_notification`;
    a notification that needs neither (:func:`is_settled_notification`) is given back as it is."""
    if is_settled_notification(doc):
        return doc
    return validate_notification(normalize.normalize_notification(doc)[0])


def validate_response(message: Any) -> dict[str, Any]:
    """Return ``message`` if it is a valid CNM response, else raise CnmValidationError."""
    return _validate(message, "response")


def _reject_constant(name: str) -> Any:
    raise DecodeError(f"record data is not JSON AWS can carry: {name} is not a JSON number")


def _finite_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise DecodeError(f"record data is not JSON AWS can carry: the number {text[:40]!r} overflows a double")
    return value


# One decoder for the process, as json.loads shares one: building it (and its scanner) per call cost a third
# of the decoding.
_DECODER = json.JSONDecoder(parse_constant=_reject_constant, parse_float=_finite_float)

# A lone surrogate can only come from a \uD800-\uDFFF escape (UTF-8 decoding rejects encoded ones).
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


# orjson decodes a document as the standard library does when no integer has more than 18 digits (it reads longer
# ones as floats) and nothing nests deep (it stops at 1,024 levels, the standard library at the recursion limit, and
# writing the message again needs <= 254): bytes with a run of 19 digits or over MAX_FAST_BRACKETS brackets anywhere
# go to the standard library, and so does whatever orjson refuses (the standard library then says why).
_DIGITS = bytes(48 if 48 <= i <= 57 else 32 for i in range(256))
_LONG_NUMBER = b"0" * 19
MAX_FAST_BRACKETS = 200


def decode_json(data: bytes | str) -> Any:
    """Decode UTF-8 JSON bytes strictly; every way it can fail is a DecodeError (see the module doc).

    orjson decodes the common record (about twice as fast); what it might read
    differently goes to :func:`decode_json_strict`, see ``_LONG_NUMBER``.
    """
    if (
        isinstance(data, bytes)
        and data.count(b"[") + data.count(b"{") <= MAX_FAST_BRACKETS
        and _LONG_NUMBER not in data.translate(_DIGITS)
    ):
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError:
            pass
    return decode_json_strict(data)


def decode_json_strict(data: bytes | str) -> Any:
    """:func:`decode_json` with the standard library alone."""
    try:
        text = data.decode("utf-8") if isinstance(data, (bytes, bytearray)) else data
    except UnicodeDecodeError as exc:
        raise DecodeError(f"record data is not UTF-8: {exc}") from None
    try:
        value = _DECODER.decode(text)
    except json.JSONDecodeError as exc:
        raise DecodeError(f"record data is not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except RecursionError:
        raise DecodeError("record data is not JSON AWS can carry: nested too deeply") from None
    except ValueError as exc:  # int() of more than sys.get_int_max_str_digits() digits
        raise DecodeError(f"record data is not JSON AWS can carry: {str(exc)[:200]}") from None
    if _SURROGATE_ESCAPE.search(text):
        try:
            json.dumps(value, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            raise DecodeError("record data is not JSON AWS can carry: a string holds a lone UTF-16 surrogate") from None
    return value


def b64decode(data: str) -> bytes:
    """Strict base64 decoding with a specific error."""
    try:
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError, TypeError) as exc:
        raise DecodeError(f"record data is not base64: {exc}") from None


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
