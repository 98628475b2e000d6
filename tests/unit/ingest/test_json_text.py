"""The workflow message's JSON text (``payload._dumps``): orjson where it writes what the standard library
writes, the standard library for everything else, so the same values are accepted and rejected."""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import json
import random

import pytest

from cnm_ingest.workflow import payload


def reference(value: object) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode("utf-8")


def _random_text(r: random.Random) -> str:
    picks = [lambda: r.randint(0, 0x7F), lambda: r.randint(0x80, 0xD7FF), lambda: r.randint(0xE000, 0x10FFFF)]
    return "".join(chr(r.choice(picks)()) for _ in range(r.randint(0, 16)))


def test_strings_and_integers_are_written_byte_for_byte_as_the_standard_library_writes_them():
    r = random.Random(9)
    for _ in range(5_000):
        text = _random_text(r)
        value = {text: [text, r.randint(-(2**63), 2**64 - 1), True, False, None, {"": text}], "k": {}}
        assert payload._dumps(value) == reference(value), repr(text)


@pytest.mark.parametrize("number", [0.1, 1e16, 1e-05, 5e-324, 1.7976931348623157e308, -0.0, 2.0**53, 123456.789])
def test_floats_are_the_same_numbers(number):
    assert json.loads(payload._dumps({"n": number})) == {"n": number}


@pytest.mark.parametrize(
    "value",
    [
        {"size": 2**64},  # beyond 64 bits
        {"size": -(2**63) - 1},
        {"size": 10**400},
        {1: "int key"},
        {None: "null key"},
        [[[[["deep"]]]]] * 3,
        {"deep": json.loads("[" * 400 + "]" * 400)},  # orjson stops at 254 levels
        {"null": None, "text": "null"},  # null in the output: checked by the standard library
    ],
)
def test_what_orjson_cannot_write_alike_is_written_by_the_standard_library(value):
    assert payload._dumps(value) == reference(value)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_nan_and_infinities_are_refused_as_before(bad):
    with pytest.raises(ValueError):
        payload._dumps({"cnm": {"size": bad}})


def test_lone_surrogates_are_refused_as_before():
    with pytest.raises(UnicodeEncodeError):
        payload._dumps({"identifier": "\ud800"})


class Colour(enum.Enum):
    RED = "red"


@dataclasses.dataclass
class Point:
    x: int


@pytest.mark.parametrize("value", [dt.datetime(2024, 1, 2), Point(1), {1, 2}, b"bytes"])
def test_values_the_standard_library_refuses_are_still_refused(value):
    with pytest.raises(TypeError):
        reference({"v": value})
    with pytest.raises(TypeError):
        payload._dumps({"v": value})


def test_the_documented_difference_enums_and_uuids_are_written_by_value():
    # No workflow message holds either (they are built from JSON and strings); payload._dumps says so.
    import uuid

    with pytest.raises(TypeError):
        reference({"v": Colour.RED})
    assert payload._dumps({"v": Colour.RED, "u": uuid.UUID(int=1)}) == (
        b'{"v":"red","u":"00000000-0000-0000-0000-000000000001"}'
    )


def test_subclasses_of_json_types_are_written_as_the_standard_library_writes_them():
    class Text(str):
        pass

    class Number(int):
        pass

    value = {"t": Text("a"), "n": Number(5), "b": True}
    assert payload._dumps(value) == reference(value)
