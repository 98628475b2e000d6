#!/usr/bin/env python3
"""A recorded session of the ``cnm-ingest`` CLI against the local pipeline served by moto on an endpoint.

    .venv/bin/python tools/cli_demo.py [--port 5123]

moto runs as a server in this process (``ThreadedMotoServer``), so its Step
Functions interpreter still reaches our task handlers (tools/local_pipeline.py's
LambdaHarness) and the pipeline's glue (event source mapping, SNS -> fallback,
EventBridge -> recorder) runs here too. The CLI runs as a separate process,
exactly as an operator runs it, with ``AWS_ENDPOINT_URL`` pointing at the server
and the stack found from a ``terraform output -json`` file. Every command and
its output is printed; the README's "Operating it" transcript comes from here.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "lambda_src"), str(ROOT / "cli"), str(ROOT)]


def cnm(identifier: str, data: bytes) -> dict:
    return {
        "version": "1.6.1",
        "provider": "DEMO_PROVIDER",
        "collection": {"name": "DEMO_L2", "version": "1"},
        "submissionTime": "2024-01-02T03:04:05.678Z",
        "identifier": identifier,
        "product": {
            "name": identifier,
            "files": [
                {
                    "type": "data",
                    "uri": f"s3://demo-provider/{identifier}.nc",
                    "name": f"{identifier}.nc",
                    "size": len(data),
                    "checksumType": "SHA256",
                    "checksum": hashlib.sha256(data).hexdigest(),
                }
            ],
        },
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=5123)
    args = parser.parse_args()
    endpoint = f"http://127.0.0.1:{args.port}"
    env = {
        "AWS_ACCESS_KEY_ID": "demo",
        "AWS_SECRET_ACCESS_KEY": "demo",
        "AWS_DEFAULT_REGION": "us-west-2",
        "AWS_REGION": "us-west-2",
        "AWS_ENDPOINT_URL": endpoint,
        "POWERTOOLS_METRICS_NAMESPACE": "cnm-ingest-demo",
        "POWERTOOLS_LOG_LEVEL": "ERROR",
        "POWERTOOLS_METRICS_DISABLED": "true",
    }
    os.environ.update(env)
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN"):
        os.environ.pop(name, None)
    logging.disable(logging.CRITICAL)

    from moto.core.config import default_user_config
    from moto.server import ThreadedMotoServer

    from tools.cli_stack import CliStack, write_outputs
    from tools.local_pipeline import LambdaHarness

    default_user_config["stepfunctions"] = {"execute_state_machine": True}
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=args.port, verbose=False)
    server.start()
    workdir = Path(tempfile.mkdtemp(prefix="cnm-ingest-cli-demo-"))
    try:
        with LambdaHarness().installed():
            stack = CliStack()
            os.environ.update(stack.environment())
            stack.add_provider("DEMO_PROVIDER", "demo-provider")
            stack.add_collection("DEMO_L2", "1", duplicate_handling="error")
            stack.add_rule("demo-l2", "DEMO_L2", "DEMO_PROVIDER", version="1")
            write_outputs(stack, str(workdir / "outputs.json"))
            run = Runner(workdir, {**env, "CNM_INGEST_OUTPUTS": str(workdir / "outputs.json")})
            scenario(stack, run, workdir)
    finally:
        server.stop()
    return 0


class Runner:
    def __init__(self, workdir: Path, env: dict[str, str]) -> None:
        self.workdir = workdir
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("AWS_")},
            **env,
            "COLUMNS": "120",
            "PYTHONPATH": f"{ROOT / 'lambda_src'}:{ROOT / 'cli'}",
        }

    def __call__(self, *args: str) -> int:
        shown = " ".join(a if " " not in a else repr(a) for a in args)
        print(f"$ cnm-ingest {shown}")
        proc = subprocess.run(
            [sys.executable, "-m", "cnm_ingest_cli", *args],
            env=self.env,
            cwd=self.workdir,
            capture_output=True,
            text=True,
            timeout=300,
        )
        out = "\n".join(line.rstrip() for line in (proc.stdout + proc.stderr).rstrip().splitlines())
        if out:
            print(out)
        if proc.returncode:
            print(f"(exit {proc.returncode})")
        print()
        return proc.returncode


def note(text: str) -> None:
    print(f"# {text}")


def scenario(stack, run: Runner, workdir: Path) -> None:
    good, fixed = b"granule bytes " * 512, b"second granule " * 512
    stack.put_object("s3://demo-provider/demo-0001.nc", good)
    stack.put_object("s3://demo-provider/demo-0002.nc", b"a truncated upload")
    inbox = workdir / "inbox"
    inbox.mkdir()
    (inbox / "demo-0001.json").write_text(json.dumps(cnm("demo-0001", good)))
    (inbox / "demo-0002.json").write_text(json.dumps(cnm("demo-0002", fixed)))
    broken = cnm("demo-0003", good)
    del broken["product"]["files"][0]["size"]
    (inbox / "demo-0003.json").write_text(json.dumps(broken))

    note("a provider sends three CNMs; the CLI refuses the invalid one with the reason")
    run("send", "inbox")
    stack.deliver_new()
    stack.wait_for_executions()
    stack.record()
    note("what happened in the last hour")
    run("status", "--since", "1h")
    run("status", "--granules", "--status", "FAILED")
    run("status", "demo-0002")

    note("the provider re-uploads the file; reingest it (duplicate handling forced to replace)")
    stack.put_object("s3://demo-provider/demo-0002.nc", fixed)
    run("reingest", "demo-0002")
    stack.wait_for_executions()
    stack.record()
    run("status", "demo-0002")

    note("a notification arrives while its rule is disabled: it ends in the DLQ")
    stack.put_object("s3://demo-provider/demo-0004.nc", good)
    run("rules", "disable", "demo-l2")
    stack.notify(json.dumps(cnm("demo-0004", good)).encode(), "demo-0004")
    stack.deliver_new()
    stack.deliver_fallback()
    run("dlq", "list")
    run("rules", "enable", "demo-l2")
    body = stack.sqs.receive_message(QueueUrl=stack.dlq_url, VisibilityTimeout=0)["Messages"][0]["Body"]
    run("dlq", "redrive", "--all")
    note("the same record parked a second time (a duplicate DLQ message) is not put twice")
    stack.sqs.send_message(QueueUrl=stack.dlq_url, MessageBody=body)
    run("dlq", "redrive", "--all")
    stack.deliver_new()
    stack.wait_for_executions()
    stack.record()

    note("the consumer is down (outage) while demo-0005 arrives")
    stack.put_object("s3://demo-provider/demo-0005.nc", good)
    stack.notify(json.dumps(cnm("demo-0005", good)).encode(), "demo-0005")
    stack.checkpoint = 10**30
    note("replay the last hour: only what had not started is started (the redriven original is done too)")
    run("replay", "--from", "1h")
    stack.wait_for_executions()
    run("responses", "--since", "1h")
    stack.record()
    run("status", "--since", "1h")


if __name__ == "__main__":
    sys.exit(main())
