"""Staging truth across the workflow's tasks (issue 18), on the applied examples/complete state machine:
three CNMs for one granule with different content started together, and an offloaded reference that
points outside the payload area. The collection of rule swot_l2_lr_ssh has duplicate_handling replace."""

from __future__ import annotations

import hashlib
from collections import Counter

import pytest

from cnm_ingest import aws


def cnm(wf, n: int, data: bytes) -> dict:
    uri = wf.put_file(f"incoming/v{n}/GRAN_007.nc", data)
    return {
        "version": "1.6.1",
        "provider": wf.rule.provider,
        "collection": dict(wf.collection),
        "submissionTime": f"2024-05-01T12:00:0{n}.000000Z",
        "identifier": f"id-concurrent-{n}",
        "product": {
            "name": "GRAN_007",
            "dataVersion": "1",
            "files": [
                {
                    "type": "data",
                    "uri": uri,
                    "name": "GRAN_007.nc",
                    "size": len(data),
                    "checksumType": "md5",
                    "checksum": hashlib.md5(data).hexdigest(),
                }
            ],
        },
    }


def test_three_cnms_for_one_granule_started_together(wf):
    """The final content is the latest submissionTime's; every SUCCESS describes what was staged when it
    committed; a CNM that lost the order answers FAILURE; no temporary object is left."""
    contents = {n: f"content of CNM {n} ".encode() * (50 * n) for n in (1, 2, 3)}
    wf.world.run_tasks = True
    arns = [wf.start(cnm(wf, n, contents[n])) for n in (1, 2, 3)]  # started together, run concurrently
    ends = [wf.world.wait(arn, 300) for arn in arns]
    key = f"{wf.staged_prefix()}/GRAN_007.nc"
    staged = wf.s3.get_object(Bucket=wf.staging_bucket, Key=key)["Body"].read()
    assert staged == contents[3], [wf.explain(e) for e in ends]
    responses = {r["identifier"]: r for r in wf.responses()}
    assert sorted(responses) == [f"id-concurrent-{n}" for n in (1, 2, 3)] and len(wf.responses()) == 3
    newest = responses["id-concurrent-3"]
    assert newest["response"] == {"status": "SUCCESS"}, newest
    [f] = newest["product"]["files"]
    assert (f["size"], f["checksum"]) == (len(staged), hashlib.md5(staged).hexdigest())
    outcomes = Counter()
    for n in (1, 2):
        r = responses[f"id-concurrent-{n}"]
        if r["response"]["status"] == "SUCCESS":  # it committed before CNM 3 registered: what it staged then
            [f] = r["product"]["files"]
            assert (f["size"], f["checksum"]) == (len(contents[n]), hashlib.md5(contents[n]).hexdigest())
            outcomes["committed before the newest"] += 1
        else:
            assert r["response"]["errorCode"] == "PROCESSING_ERROR", r
            assert (
                "submitted later" in r["response"]["errorMessage"] or "waits its turn" in r["response"]["errorMessage"]
            ), r
            outcomes["superseded or out of turns"] += 1
    print(dict(outcomes))
    leftovers = wf.s3.list_objects_v2(Bucket=wf.staging_bucket, Prefix=".cnm-ingest-tmp/").get("KeyCount", 0)
    assert leftovers == 0
    assert wf.s3.list_multipart_uploads(Bucket=wf.staging_bucket).get("Uploads", []) == []


@pytest.mark.contract_break  # meta.cnm_ref is not workflow/<sha256>: outside the workflow contract on purpose
def test_an_offloaded_reference_outside_the_payload_area_fails_before_any_read(wf):
    """A workflow input whose meta.cnm_ref names a staged object (matching size and digest) is refused by
    TranslateMessage before any S3 call: the execution fails, the object is never read."""
    secret = b'{"provider": "someone else", "secret": true}'
    wf.s3.put_object(Bucket=wf.staging_bucket, Key="other/secret.json", Body=secret)
    ref = {
        "bucket": wf.staging_bucket,
        "key": "other/secret.json",
        "size": len(secret),
        "sha256": hashlib.sha256(secret).hexdigest(),
    }

    def point_elsewhere(message: dict) -> None:
        message["meta"].pop("cnm")
        message["meta"]["cnm_ref"] = ref

    gets: list[str] = []

    def record(params, **_):
        gets.append(f"{params['Bucket']}/{params['Key']}")

    aws.reset()  # the tasks' clients are built again, with the hook
    aws.session().events.register("before-parameter-build.s3.GetObject", record)
    try:
        wf.world.run_tasks = True
        desc = wf.world.wait(wf.start(cnm(wf, 1, b"x" * 10), mutate=point_elsewhere), 120)
        with wf.env("sync_granule"):
            aws.client("s3").get_object(Bucket=wf.staging_bucket, Key="other/secret.json")  # the hook is live
    finally:
        aws.session().events.unregister("before-parameter-build.s3.GetObject", record)
        aws.reset()
    assert gets == [f"{wf.staging_bucket}/other/secret.json"]  # only the test's own read above
    assert desc["status"] == "FAILED", wf.explain(desc)
    failures = [e for e in wf.history(desc["executionArn"]) if e["type"] in ("TaskFailed", "LambdaFunctionFailed")]
    assert any("WorkflowPayloadError" in str(e) for e in failures), wf.explain(desc)
