"""decode_json: orjson for the common record, the strict standard-library decoder for everything it might read
differently; both give the same value or both refuse (DecodeError)."""

from __future__ import annotations

import base64
import binascii
import json
import random

import pytest

from cnm_ingest.cnm import decode
from cnm_ingest.errors import DecodeError


def verdict(decode, data):
    try:
        return "ok", repr(decode(data))
    except DecodeError:
        return ("refused",)


BASE = [
    json.dumps(
        {
            "identifier": f"g-{i}",
            "product": {"files": [{"size": 10**i, "name": "é😀", "checksum": "d41d8cd9" * 4}]},
            "f": i + 0.25,
            "n": None,
            "t": [True, False, -0, -0.0, 1e5, 2.5e-300],
        }
    ).encode()
    for i in range(20)
]
ALPHABET = b'{}[]":,0123456789.eE+-\\u nulltrfa \t\n\r\xff\xc3\xa9d8'


def test_mutated_documents_decode_alike_or_are_refused_alike():
    r = random.Random(11)
    for _ in range(30_000):
        data = bytearray(r.choice(BASE))
        for _ in range(r.randint(1, 4)):
            at = r.randrange(len(data) + 1)
            k = r.random()
            if k < 0.4:
                data[at : at + 1] = bytes([r.choice(ALPHABET)])
            elif k < 0.7:
                data[at:at] = bytes([r.choice(ALPHABET)]) * r.randint(1, 25)
            else:
                del data[at : at + r.randint(1, 3)]
        assert verdict(decode.decode_json, bytes(data)) == verdict(decode.decode_json_strict, bytes(data)), bytes(data)


@pytest.mark.parametrize(
    "data",
    [
        b'{"size": 123456789012345678}',  # 18 digits: orjson
        b'{"size": 1234567890123456789}',  # 19: the standard library (orjson could read a float)
        b'{"size": 123456789012345678901234567890}',
        b'{"size": -9223372036854775809}',
        b'{"size": 18446744073709551616}',
        b'{"f": 0.1234567890123456789}',
        b'{"f": 1.7976931348623157e308, "g": 5e-324, "h": -0.0}',
        b"[" * 150 + b"]" * 150,
        b"[" * 900 + b"]" * 900,  # nested deeper than orjson's fast path takes: the standard library decides
        b'{"s": "\\ud83d\\ude00", "k": {"\\u00e9": 1}}',
        b' \t\n\r{"a": []}\r\n',
    ],
)
def test_what_the_fast_path_leaves_to_the_standard_library_is_decoded_exactly(data):
    assert verdict(decode.decode_json, data) == verdict(decode.decode_json_strict, data)
    if b"123456789012345678901234567890" in data:
        assert decode.decode_json(data)["size"] == 123456789012345678901234567890  # an int, not a float


@pytest.mark.parametrize(
    "data",
    [
        b'{"a": NaN}',
        b'{"a": -Infinity}',
        b'{"a": 1e400}',
        b'{"a": "\\ud800"}',
        b'{"\\udc00": 1}',
        b"\xef\xbb\xbf{}",
        b"\xff{}",
        b'{"a": "\x01"}',
        b"{} {}",
        b"",
        b"[" * 5000 + b"]" * 5000,
        b"1" * 5000,
    ],
)
def test_what_aws_cannot_carry_is_refused_on_both_paths(data):
    with pytest.raises(DecodeError):
        decode.decode_json(data)
    with pytest.raises(DecodeError):
        decode.decode_json_strict(data)


def b64_verdict(fn, data):
    try:
        return "ok", fn(data)
    except DecodeError as exc:
        return "refused", str(exc)
    except (binascii.Error, ValueError, TypeError) as exc:  # base64's own, as decode.b64decode words it
        return "refused", f"record data is not base64: {exc}"


B64_SAMPLES = [
    "",
    "YWJj",
    "YWI=",
    "YQ==",
    base64.b64encode(BASE[3]).decode(),
    "YW Jj",
    "YWJj\n",
    "YQ=",
    "YQ===",
    "=YWJ",
    "YW=j",
    "a",
    "YWJj" + "é",
    "ＹＷＪｊ",
    "YWJj\x00",
    "-_-_",
    b"YWJj",
    bytearray(b"YWI="),
    memoryview(b"YQ=="),
    b"YW Jj",
    b"\xff\xfe",
]


@pytest.mark.parametrize("data", B64_SAMPLES)
def test_b64decode_is_base64s_strict_decoding(data):
    """A str goes to binascii directly (two calls fewer a record): the same bytes, or the same refusal, as
    ``base64.b64decode(validate=True)``, for str and bytes-like input alike."""
    assert b64_verdict(decode.b64decode, data) == b64_verdict(lambda d: base64.b64decode(d, validate=True), data)


def test_mutated_base64_decodes_alike_or_is_refused_alike():
    r = random.Random(5)
    alphabet = "ABCXYZabcxyz0189+/=-_ \n\té\x00"
    for _ in range(5_000):
        text = list(base64.b64encode(r.choice(BASE)[: r.randint(0, 40)]).decode())
        for _ in range(r.randint(0, 3)):
            at = r.randrange(len(text) + 1)
            if r.random() < 0.5:
                text[at:at] = r.choice(alphabet)
            else:
                del text[at : at + 1]
        data = "".join(text)
        assert b64_verdict(decode.b64decode, data) == b64_verdict(lambda d: base64.b64decode(d, validate=True), data), (
            data
        )


@pytest.mark.parametrize(
    "data",
    [
        b"[" * 100 + b"{" * 100 + b"}" * 100 + b"]" * 100,  # 200 brackets of both kinds: orjson
        b"[" * 101 + b"{" * 100 + b"}" * 100 + b"]" * 101,  # 201: the standard library
        b'{"s": "1234567890123456789"}',  # 19 digits inside a string: the standard library, the same value
        b'{"a": 123456789012345678, "b": 1}',
    ],
)
def test_the_fast_paths_limits_give_the_same_value(data):
    assert verdict(decode.decode_json, data) == verdict(decode.decode_json_strict, data)
