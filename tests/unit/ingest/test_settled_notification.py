"""validate.is_settled_notification, the consumer's shortcut past normalize + validate,
gives what the general path gives.

The promise: when it says True, normalize_notification gives the same object
back with no note and validate_notification accepts it; so
normalize_and_validate returns (or raises) exactly what normalising then
validating returns (or raises), for every document. Checked on the samples,
on the benchmark's record and on thousands of random mutations aimed at what
either path looks at.
"""

from __future__ import annotations

import copy
import json
import random
from typing import Any

import pytest

from bench import consumer_fakes
from cnm_ingest.cnm import normalize, validate
from cnm_ingest.errors import CnmValidationError
from tests.conftest import is_response


class Text(str):
    """A str subclass (never decoded from JSON): the shortcut leaves it to the general path."""


DATES = [
    "2024-01-02T03:04:05Z",
    "2024-01-02T03:04:05.678Z",
    "2024-01-02T03:04:05+01:00",
    "2024-01-02T03:04:05-0700",
    "2024-01-02t03:04:05z",
    "2024-01-02T03:04:05",
    "2024-01-02 03:04:05Z",
    "2024-01-02T03:04:05Z\n",
    " 2024-01-02T03:04:05Z",
    "2024-02-30T00:00:00Z",
    "2024-02-29T00:00:00Z",
    "2023-02-29T00:00:00Z",
    "2024-01-02T24:00:00Z",
    "2024-01-02T23:59:60Z",
    "2024-01-02T03:04:05+24:00",
    "2024-01-02",
    "２024-01-02T03:04:05Z",
]
ODD = [
    None,
    True,
    False,
    0,
    -1,
    7,
    1.0,
    1.5,
    -0.0,
    10**20,
    float("nan"),
    "",
    " ",
    "x",
    "123",
    " 12",
    "s3://bucket/key",
    " s3://bucket/key",
    "s3://bucket/key ",
    "https://h/p?q#f ",
    "\ts3://a/../b",
    "data",
    "Data",
    " data",
    "metadata",
    "md5",
    "MD5",
    "SHA-512",
    "SHA512",
    "sha256",
    "forward",
    "FORWARD",
    "reprocessing",
    "1.6.1",
    "1.6",
    "v1.0",
    "1.0",
    " 1.0",
    "１.0",
    "\ud800",
    "é\u0301",
    Text("data"),
    Text("1.6.1"),
    [],
    ["a"],
    {},
    {"name": "C", "version": "1"},
    {"name": "C"},
    {"name": "C", "version": 1},
    {"status": "SUCCESS"},
    *DATES,
]
KEYS = [
    "response",
    "filegroups",
    "files",
    "checksum-type",
    "checksumType",
    "checksum",
    "receivedTime",
    "processCompleteTime",
    "submissionTime",
    "trace",
    "provider",
    "subtype",
    "dataProcessingType",
    "dataVersion",
    "version",
    "identifier",
    "collection",
    "product",
    "name",
    "type",
    "size",
    "uri",
    "extra",
]


def _general(doc: Any) -> Any:
    return validate.validate_notification(normalize.normalize_notification(doc)[0])


def _outcome(fn, doc: Any) -> tuple:
    try:
        value = fn(doc)
    except CnmValidationError as exc:
        return ("rejected", str(exc), getattr(exc, "path", None))
    return ("accepted", json.dumps(value, sort_keys=True, default=repr))


def _containers(node: Any, out: list) -> list:
    if isinstance(node, dict):
        out.append(node)
        for v in node.values():
            _containers(v, out)
    elif isinstance(node, list):
        out.append(node)
        for v in node:
            _containers(v, out)
    return out


def _mutate(doc: Any, r: random.Random) -> Any:
    doc = copy.deepcopy(doc)
    for _ in range(r.choice([1, 1, 1, 2, 3])):
        target = r.choice(_containers(doc, []))
        if isinstance(target, dict):
            action = r.random()
            if action < 0.15 and target:
                del target[r.choice(list(target))]
            elif action < 0.55 and target:
                target[r.choice(list(target))] = copy.deepcopy(r.choice(ODD))
            else:
                target[r.choice(KEYS)] = copy.deepcopy(r.choice(ODD))
        elif target:
            i = r.randrange(len(target))
            target[i] = copy.deepcopy(r.choice(ODD)) if r.random() < 0.7 else copy.deepcopy(target[0])
        else:
            target.append(copy.deepcopy(r.choice(ODD)))
    return doc


@pytest.fixture(scope="module")
def bases(samples) -> list[dict]:
    out = [json.loads(consumer_fakes.notification(i, 3)) for i in range(3)]
    out += [m for m in samples.values() if not is_response(m)]
    return out


def test_the_benchmark_record_and_the_canonical_samples_take_the_shortcut(bases):
    settled = [b for b in bases if validate.is_settled_notification(b)]
    assert all(validate.is_settled_notification(json.loads(consumer_fakes.notification(i, 1))) for i in range(5))
    assert len(settled) >= 3
    for doc in settled:
        assert validate.normalize_and_validate(doc) is doc


@pytest.mark.parametrize(
    "mutate",
    [
        lambda d: d.update(version="v1.0"),  # normalize rewrites
        lambda d: d.update(submissionTime="2024-01-02 03:04:05"),
        lambda d: d.update(receivedTime="2024-01-02T03:04:05"),
        lambda d: d["product"]["files"][0].update(checksumType="SHA-512"),
        lambda d: d["product"]["files"][0].update(type="Data"),
        lambda d: d["product"]["files"][0].update(size="1000"),
        lambda d: d["product"]["files"][0].update(uri=" s3://prov/x.nc"),
        lambda d: d["product"]["files"][0].update({"checksum-type": "md5"}),
        lambda d: d["product"].update(dataProcessingType="FORWARD"),
        lambda d: d.update(response={"status": "SUCCESS"}),  # the schema rejects
        lambda d: d.update(submissionTime="2024-02-30T00:00:00Z"),
        lambda d: d.update(processCompleteTime="2024-01-02T03:04:05Z\n"),
        lambda d: d.update(collection={"name": "C"}),
        lambda d: d.update(provider=7),
        lambda d: d["product"]["files"][0].update(size=-1),
        lambda d: d["product"]["files"][0].update(size=1.5),
        lambda d: d["product"]["files"][0].update(size=True),
        lambda d: d["product"]["files"][0].pop("uri"),
        lambda d: d["product"].update(filegroups=[]),
        lambda d: d["product"].update(files={}),
        lambda d: d.pop("submissionTime"),
    ],
)
def test_what_either_path_would_change_or_reject_goes_the_general_way(mutate):
    doc = json.loads(consumer_fakes.notification(1, 1))
    assert validate.is_settled_notification(doc)
    mutate(doc)
    assert not validate.is_settled_notification(doc)
    assert _outcome(validate.normalize_and_validate, doc) == _outcome(_general, doc)


def test_the_shortcut_agrees_with_normalising_then_validating_on_mutated_notifications(bases):
    r = random.Random(9)
    taken = general_same = 0
    for _ in range(12_000):
        doc = _mutate(r.choice(bases), r)
        before = copy.deepcopy(doc)
        if validate.is_settled_notification(doc):
            taken += 1
            out, notes = normalize.normalize_notification(doc)
            assert out is doc and notes == [], doc
            assert validate.validate_notification(doc) is doc
        else:
            out, notes = normalize.normalize_notification(doc)
            general_same += out is doc and not notes
        assert _outcome(validate.normalize_and_validate, doc) == _outcome(_general, doc), doc
        assert json.dumps(doc, sort_keys=True, default=repr) == json.dumps(before, sort_keys=True, default=repr)
    # Both ways are exercised: mutations that keep the record common, and ones that do not.
    assert taken > 1_000, taken
    assert 12_000 - taken > 5_000
