"""What a cold start of the message consumer imports, and what waits for first use (bad records, validation)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading

import pytest

from cnm_ingest import idempotency
from cnm_ingest.cnm import decode
from cnm_ingest.errors import DecodeError
from tests.conftest import ROOT

PROBE = """
import gc, json, sys
sys.path[0:0] = [sys.argv[1], sys.argv[1] + "/handlers"]
import message_consumer
print(json.dumps(sorted(sys.modules)))
"""
HANDLERS = sorted(p.stem for p in (ROOT / "lambda_src" / "handlers").glob("*.py"))
GC_PROBE = """
import gc, sys
sys.path[0:0] = [sys.argv[1], sys.argv[1] + "/handlers"]
paused = []
# a collection between the pause (cnm_ingest.coldstart imported) and done() (the freeze)
def seen(phase, info):
    if "cnm_ingest.coldstart" in sys.modules and not gc.get_freeze_count():
        paused.append(phase)
gc.callbacks.append(seen)
import importlib
module = importlib.import_module(sys.argv[2])
assert gc.isenabled(), "the collector was not resumed"
assert gc.get_freeze_count() > 10_000, gc.get_freeze_count()
print(len(paused))
"""


@pytest.mark.parametrize("handler", HANDLERS)
def test_every_handler_pauses_the_collector_while_it_imports_and_resumes_it(handler):
    env = {**os.environ, "AWS_DEFAULT_REGION": "us-west-2", "POWERTOOLS_SERVICE_NAME": "t"}
    done = subprocess.run(
        [sys.executable, "-c", GC_PROBE, str(ROOT / "lambda_src"), handler], env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert int(done.stdout.strip()) == 0  # not one collection while boto3, Powertools and cnm_ingest loaded
    source = (ROOT / "lambda_src" / "handlers" / f"{handler}.py").read_text()
    body = source.split('"""', 2)[-1]
    first_import = next(
        line for line in body.splitlines() if line.startswith(("import ", "from ")) and "__future__" not in line
    )
    assert first_import == "import cnm_ingest.coldstart"
    assert source.rstrip().splitlines()[-1].startswith("cnm_ingest.coldstart.done()")


def test_the_consumer_imports_neither_idempotency_nor_the_bad_record_paths_at_a_cold_start():
    env = {**os.environ, "AWS_DEFAULT_REGION": "us-west-2", "POWERTOOLS_SERVICE_NAME": "t"}
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(ROOT / "lambda_src")], env=env, capture_output=True, text=True, check=True
    )
    modules = set(json.loads(done.stdout.splitlines()[-1]))
    assert "cnm_ingest.consumer.consume" in modules and "aws_lambda_powertools.utilities.batch" in modules
    for lazy in (
        "aws_lambda_powertools.utilities.idempotency",
        "cnm_ingest.dlq",
        "cnm_ingest.cnm.response_message",
        "cnm_ingest.cnm.notification_validator",
        "fastjsonschema",
    ):
        assert lazy not in modules, lazy


def test_the_idempotency_error_class_is_the_powertools_one():
    from aws_lambda_powertools.utilities.idempotency.exceptions import IdempotencyAlreadyInProgressError

    assert idempotency.IdempotencyAlreadyInProgressError is IdempotencyAlreadyInProgressError
    with pytest.raises(AttributeError):
        _ = idempotency.NoSuchThing  # type: ignore[attr-defined]


def test_once_builds_its_powertools_config_on_first_use(monkeypatch):
    monkeypatch.setenv("IDEMPOTENCY_TTL_SECONDS", "60")

    class Context:
        def get_remaining_time_in_millis(self) -> int:
            return 1000

    context = Context()
    o = idempotency.Once("table", context)
    assert o._config is None
    assert o.config.expires_after_seconds == 60 and o.config.lambda_context is context
    assert o.config is o.config


@pytest.mark.parametrize(
    "data",
    [b"\xef\xbb\xbf{}", b"{} x", b'{"a": NaN}', b'{"a": 1e400}', b'{"a": "\\ud800"}', b"[" * 100_000, b"\xff"],
)
def test_the_shared_decoder_still_refuses_what_aws_cannot_carry(data):
    with pytest.raises(DecodeError):
        decode.decode_json(data)


def test_the_shared_decoder_is_safe_across_the_pool_threads():
    docs = [json.dumps({"i": i, "f": i + 0.5, "k": [str(i)] * 5, f"key{i % 7}": {"n": -i * 1.25}}) for i in range(200)]
    wrong: list[int] = []

    def decode_all() -> None:
        for _ in range(20):
            for i, text in enumerate(docs):
                if decode.decode_json(text.encode()) != json.loads(text):
                    wrong.append(i)

    threads = [threading.Thread(target=decode_all) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert wrong == []
