"""normalize's shortcuts for values already in the schema's spelling give what the full rewrite gives."""

from __future__ import annotations

import random
import re

import pytest

from cnm_ingest.cnm import normalize


def _slow_version(value):
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        return None
    m = normalize._VERSION.fullmatch(value.strip())
    return normalize._VERSION_BY_KEY.get(normalize._key(m[1])) if m else None


def _slow_checksum_type(value):
    if not isinstance(value, str):
        return None
    return normalize.CHECKSUM_TYPES.get(normalize._SEPARATORS.sub("", value).upper())


def _slow_enum(value, allowed):
    if isinstance(value, str) and value.strip().lower() in allowed:
        return value.strip().lower()
    return None


SPELLINGS = [
    *normalize.VERSIONS,
    *normalize.CHECKSUM_TYPES,
    *normalize.CHECKSUM_TYPES.values(),
    *normalize.FILE_TYPES,
    *normalize.PROCESSING_TYPES,
    "v1.0",
    "1.6",
    "1.5.0",
    " 1.0",
    "1.0 ",
    "SHA-512",
    "sha_256",
    "Data",
    " data",
    "FORWARD",
    "",
    "１.0",
    "md5\x00",
]


@pytest.mark.parametrize("value", [*SPELLINGS, None, 1.0, 1, True, ["1.0"], {"a": 1}])
def test_shortcuts_agree_with_the_full_rewrite(value):
    assert normalize.version(value) == _slow_version(value)
    assert normalize.checksum_type(value) == _slow_checksum_type(value)
    assert normalize._enum(value, normalize.FILE_TYPES) == _slow_enum(value, normalize.FILE_TYPES)
    assert normalize._enum(value, normalize.PROCESSING_TYPES) == _slow_enum(value, normalize.PROCESSING_TYPES)


def test_a_version_is_not_taken_for_a_checksum_type_or_the_other_way_round():
    assert normalize.version("md5") is None
    assert normalize.checksum_type("1.0") is None


def _near_canonical(r: random.Random) -> str:
    digits = "0123456789"
    base = list(
        f"{r.randint(0, 9999):04d}-{r.randint(0, 13):02d}-{r.randint(0, 32):02d}T"
        f"{r.randint(0, 25):02d}:{r.randint(0, 61):02d}:{r.randint(0, 61):02d}"
    )
    if r.random() < 0.3:
        base[r.randrange(len(base))] = r.choice([*digits, "T", "t", " ", "٣", "-", ":"])
    frac = r.choice(["", ".5", ".123456", ".", ".x"])
    offset = r.choice(["Z", "z", "+00:00", "-07:30", "+0000", "", "+24:00", " Z"])
    pad = r.choice(["", "", " ", "\n"])
    return pad + "".join(base) + frac + offset + r.choice(["", "", " "])


def test_a_canonical_date_time_needs_no_rewrite_whatever_its_calendar_validity():
    """The shortcut's premise: date_time() gives such a value back, or None; never another spelling."""
    r = random.Random(4)
    canonical = 0
    for _ in range(20_000):
        value = _near_canonical(r)
        if normalize.written_as_date_time_writes(value):
            canonical += 1
            assert normalize.date_time(value) in (value, None), value
    assert canonical > 1000


def test_normalize_notification_rewrites_what_it_rewrote_before_and_nothing_else():
    r = random.Random(5)
    for _ in range(5_000):
        value = _near_canonical(r)
        doc = {"submissionTime": value, "receivedTime": value, "version": "1.6.1"}
        out, notes = normalize.normalize_notification(doc)
        fixed = normalize.date_time(value)
        expected = fixed if fixed is not None and fixed != value else value
        assert out["submissionTime"] == out["receivedTime"] == expected, value
        assert len(notes) == (0 if expected == value else 2)
        for note in notes:
            assert re.fullmatch(r"\$\.(submissionTime|receivedTime): .*", note), note
