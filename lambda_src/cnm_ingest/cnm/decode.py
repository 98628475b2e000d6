"""Decoding a record's bytes into JSON, strictly.

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
import json
import math
import re
from typing import Any

import orjson

from cnm_ingest.errors import DecodeError


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
# One pass over the bytes gives both: each digit becomes "0", each "[" or "{" a "[", anything else a blank.
_SHAPE = bytes(48 if 48 <= i <= 57 else 91 if i in (91, 123) else 32 for i in range(256))
_LONG_NUMBER = b"0" * 19
MAX_FAST_BRACKETS = 200


def decode_json(data: bytes | str) -> Any:
    """Decode UTF-8 JSON bytes strictly; every way it can fail is a DecodeError (see the module doc).

    orjson decodes the common record (about twice as fast); what it might read
    differently goes to :func:`decode_json_strict`, see ``_LONG_NUMBER``.
    """
    # find, not `in`: bytes.__contains__ tries its argument as an integer first (an exception raised and
    # cleared, each record)
    shape = data.translate(_SHAPE) if isinstance(data, bytes) else None
    if shape is not None and shape.count(b"[") <= MAX_FAST_BRACKETS and shape.find(_LONG_NUMBER) < 0:
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
    """Strict base64 decoding with a specific error.

    A str (every record's data) goes to binascii directly: ``base64.b64decode(validate=True)`` encodes it as
    ASCII and calls the same ``a2b_base64(strict_mode=True)``, which takes an ASCII str itself and refuses any
    other with the same ValueError; two Python calls fewer a record.
    """
    try:
        if type(data) is str:
            return binascii.a2b_base64(data, strict_mode=True)
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError, TypeError) as exc:
        raise DecodeError(f"record data is not base64: {exc}") from None
