"""What a cold start of the message consumer imports, and what waits for first use (bad records, validation)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading

import pytest

from cnm_ingest import cnm, once
from cnm_ingest.errors import DecodeError
from tests.conftest import ROOT

PROBE = """
import json, sys
sys.path[0:0] = [sys.argv[1], sys.argv[1] + "/handlers"]
import message_consumer
print(json.dumps(sorted(sys.modules)))
"""


def test_the_consumer_imports_neither_idempotency_nor_the_bad_record_paths_at_a_cold_start():
    env = {**os.environ, "AWS_DEFAULT_REGION": "us-west-2", "POWERTOOLS_SERVICE_NAME": "t"}
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(ROOT / "lambda_src")], env=env, capture_output=True, text=True, check=True
    )
    modules = set(json.loads(done.stdout.splitlines()[-1]))
    assert "cnm_ingest.ingest" in modules and "aws_lambda_powertools.utilities.batch" in modules
    for lazy in (
        "aws_lambda_powertools.utilities.idempotency",
        "cnm_ingest.dlq",
        "cnm_ingest.response",
        "cnm_ingest.schema.notification_validator",
        "fastjsonschema",
    ):
        assert lazy not in modules, lazy


def test_the_idempotency_error_class_is_the_powertools_one():
    from aws_lambda_powertools.utilities.idempotency.exceptions import IdempotencyAlreadyInProgressError

    assert once.IdempotencyAlreadyInProgressError is IdempotencyAlreadyInProgressError
    with pytest.raises(AttributeError):
        _ = once.NoSuchThing  # type: ignore[attr-defined]


def test_once_builds_its_powertools_config_on_first_use(monkeypatch):
    monkeypatch.setenv("IDEMPOTENCY_TTL_SECONDS", "60")

    class Context:
        def get_remaining_time_in_millis(self) -> int:
            return 1000

    context = Context()
    o = once.Once("table", context)
    assert o._config is None
    assert o.config.expires_after_seconds == 60 and o.config.lambda_context is context
    assert o.config is o.config


@pytest.mark.parametrize(
    "data",
    [b"\xef\xbb\xbf{}", b"{} x", b'{"a": NaN}', b'{"a": 1e400}', b'{"a": "\\ud800"}', b"[" * 100_000, b"\xff"],
)
def test_the_shared_decoder_still_refuses_what_aws_cannot_carry(data):
    with pytest.raises(DecodeError):
        cnm.decode_json(data)


def test_the_shared_decoder_is_safe_across_the_pool_threads():
    docs = [json.dumps({"i": i, "f": i + 0.5, "k": [str(i)] * 5, f"key{i % 7}": {"n": -i * 1.25}}) for i in range(200)]
    wrong: list[int] = []

    def decode_all() -> None:
        for _ in range(20):
            for i, text in enumerate(docs):
                if cnm.decode_json(text.encode()) != json.loads(text):
                    wrong.append(i)

    threads = [threading.Thread(target=decode_all) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert wrong == []
