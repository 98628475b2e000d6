"""The CNM validators the functions import: generated from the schema, current, and exactly as strict as it.

``cnm_ingest/cnm_<kind>_validator.py`` is fastjsonschema's code for ``validate.VALIDATOR_KINDS``
(``tools/gen_validators.py``). The notification one validates
``validate.fast_notification_schema()`` (rewritten, ``$ref`` inlined); the
reference here is fastjsonschema compiling the published notification branch
as it is, so both sides share the date-time format and differ only by the
rewrite.
"""

from __future__ import annotations

import copy
import json
import subprocess
import sys

import fastjsonschema
import pytest

from cnm_ingest.cnm import validate
from cnm_ingest.errors import CnmValidationError
from tests.conftest import ROOT, is_response
from tools import gen_validators


@pytest.mark.parametrize("kind", sorted(validate.VALIDATOR_KINDS))
def test_the_generated_modules_are_what_the_schema_and_the_pinned_fastjsonschema_give(kind):
    path = ROOT / "lambda_src" / "cnm_ingest" / "cnm" / f"{kind}_validator.py"
    assert path.read_text(encoding="utf-8") == gen_validators.validator_source(kind), (
        "run: python tools/gen_validators.py"
    )


def test_the_check_mode_of_the_generator_agrees():
    done = subprocess.run([sys.executable, "tools/gen_validators.py", "--check"], cwd=ROOT, capture_output=True)
    assert done.returncode == 0, done.stdout


def test_validators_are_imported_not_compiled(monkeypatch):
    def no_compile(*_args, **_kwargs):
        raise AssertionError("compiled at run time")

    monkeypatch.setattr(fastjsonschema, "compile", no_compile)
    validate.compiled.cache_clear()
    try:
        for kind in validate.VALIDATOR_KINDS:
            assert validate.compiled(kind) is validate.compiled(kind)  # once per process
    finally:
        validate.compiled.cache_clear()
    with pytest.raises(KeyError):
        validate.compiled("../../etc/passwd")


def _sample() -> dict:
    return {
        "version": "1.6.1",
        "provider": "PROV",
        "collection": {"name": "C", "version": "1"},
        "submissionTime": "2024-01-02T03:04:05.678Z",
        "identifier": "g-1",
        "product": {
            "name": "g-1",
            "dataVersion": "1",
            "files": [
                {"type": "data", "uri": "s3://b/k.nc", "name": "k.nc", "size": 10, "checksumType": "md5"},
                {"type": "metadata", "uri": "s3://b/k.cmr.json", "name": "k.cmr.json", "size": 2},
            ],
        },
    }


def _deep(levels: int) -> object:
    value: object = "leaf"
    for _ in range(levels):
        value = {"x": [value]}
    return value


def _hostile() -> list[object]:
    """Documents a hostile sender would try, each a mutation of a valid notification."""
    huge = "x" * (1 << 20)
    mutations = [
        lambda d: d.update(identifier=huge),
        lambda d: d.update(extra=_deep(500)),
        lambda d: d["product"].update(extra=_deep(200)),
        lambda d: d["product"]["files"][0].update(extra=_deep(100)),
        lambda d: d.update(identifier="\ud800"),  # a lone surrogate (from a \\ud800 escape)
        lambda d: d.update(identifier="\u202egnp.exe\x00"),
        lambda d: d.update(submissionTime="２０２４-01-02T03:04:05Z"),  # fullwidth digits
        lambda d: d.update(submissionTime="2024-02-30T03:04:05Z"),
        lambda d: d.update(submissionTime="2024-01-02T03:04:05+0000"),
        lambda d: d.update(submissionTime="2024-01-02 03:04:05Z"),
        lambda d: d.update(submissionTime="2024-01-02T03:04:05Z\n"),
        lambda d: d.update(version="1.6.1\x00"),
        lambda d: d.update(version=None),
        lambda d: d.update(provider=7),
        lambda d: d.update(collection={"name": "C", "version": 1}),
        lambda d: d.update(collection={"name": "C", "version": "1", "extra": _deep(50)}),
        lambda d: d.update(collection=""),
        lambda d: d.update(collection=None),
        lambda d: d["product"]["files"][0].update(size=True),
        lambda d: d["product"]["files"][0].update(size=float("nan")),
        lambda d: d["product"]["files"][0].update(size=10**400),
        lambda d: d["product"]["files"][0].update(size=None),
        lambda d: d["product"]["files"][0].update(type="DATA"),
        lambda d: d["product"]["files"][0].update(checksumType="sha-256"),
        lambda d: d["product"]["files"][0].pop("name"),
        lambda d: d["product"]["files"].append([]),
        lambda d: d["product"]["files"].append(None),
        lambda d: d["product"].update(files=[]),
        lambda d: d["product"].update(files={}),
        lambda d: d["product"].update(files=[d["product"]["files"][0]] * 2000),
        lambda d: d["product"].update(filegroups=[{"id": "g", "files": []}]),
        lambda d: (d["product"].pop("files"), d["product"].update(filegroups=[{"id": "g", "files": []}])),
        lambda d: (d["product"].pop("files"), d["product"].update(filegroups=[{"id": "g", "files": [{}]}])),
        lambda d: (d["product"].pop("files"), d["product"].update(filegroups=[{"files": []}])),
        lambda d: (d["product"].pop("files"), d["product"].update(filegroups="g")),
        lambda d: d["product"].update(dataProcessingType="Forward"),
        lambda d: d["product"].update(name=["g"]),
        lambda d: d.update(response={}),
        lambda d: d.update(response=None),
        lambda d: d.update({"\ud800": 1}),
        lambda d: d.update({"": ""}),
        lambda d: d.update(receivedTime=""),
        lambda d: d.update(processCompleteTime="2024-01-02T03:04:60Z"),
    ]
    out: list[object] = [_sample(), [], "notification", None, 7, {}]
    for mutate in mutations:
        doc = _sample()
        mutate(doc)
        out.append(doc)
    return out


def test_the_fast_validator_accepts_exactly_what_the_published_branch_accepts_under_hostile_input(samples):
    reference = fastjsonschema.compile(validate.notification_schema())
    fast = validate.compiled("notification")
    docs = [*_hostile(), *(copy.deepcopy(m) for m in samples.values())]
    verdicts = []
    for doc in docs:
        results = []
        for check in (reference, fast):
            try:
                check(doc)
                results.append(None)
            except fastjsonschema.JsonSchemaValueException as exc:
                results.append(exc.message)
        assert (results[0] is None) == (results[1] is None), (results, json.dumps(doc, default=str)[:300])
        verdicts.append(results[1] is None)
    assert True in verdicts and False in verdicts
    # every published response sample is still rejected as a notification
    assert any(is_response(m) for m in samples.values())


def test_hostile_documents_end_in_a_validation_error_never_another_exception():
    for doc in _hostile():
        try:
            validate.validate_notification(doc)
        except CnmValidationError as exc:
            assert len(str(exc)) < 10_000  # a 1 MiB value is not echoed whole
