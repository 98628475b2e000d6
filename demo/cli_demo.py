#!/usr/bin/env python3
"""A recorded session of the ``cnm-ingest`` CLI on the stack Terraform applied to the local AWS.

    .venv/bin/python demo/cli_demo.py > docs/cli-transcript.txt

The local AWS (localaws: moto with the project's patches) runs in this process; examples/complete
is applied to it with `terraform init` + `apply` (tools/terraform, the offline provider mirror), and
localaws.runtime runs what was applied (the consumer's event source mapping, SNS -> fallback, the
workflow's functions, EventBridge -> recorder). The CLI runs as a separate process, exactly as an
operator runs it (``python -m cnm_ingest_cli``, what the ``cnm-ingest`` script runs), with
``AWS_ENDPOINT_URL`` pointing at the local AWS and the stack found from the example's
``terraform output -json`` saved to a file. Every command and its output is printed; the README's
"Operating it" transcript comes from here. The stack is not destroyed: it lives in this process.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "lambda_src"), str(ROOT / "cli")]

from localaws import pipeline  # noqa: E402
from localaws import terraform as localtf  # noqa: E402
from localaws.runtime import Runtime  # noqa: E402
from localaws.server import REGION, LocalAWS  # noqa: E402

PREFIX = "cnm-complete"
BUCKET = f"{PREFIX}-provider-outbox"
SWOT = ("PODAAC_SWOT", "SWOT_L2_LR_SSH", "2.0")
SAMPLES = ("PODAAC_SWOT", "SWOT_Prod_l2:1", "1")  # the example's rule cnm_samples


def cnm(
    name: str,
    data: bytes,
    routing: tuple[str, str, str] = SWOT,
    *,
    identifier: str | None = None,
    folder: str = "incoming",
) -> dict[str, Any]:
    """A notification for one file ``s3://<provider bucket>/<folder>/<name>.nc`` holding ``data``."""
    provider, collection, version = routing
    return {
        "version": "1.6.1",
        "provider": provider,
        "collection": {"name": collection, "version": version},
        "submissionTime": "2026-11-26T07:00:00.000Z",
        "identifier": identifier or name,
        "product": {
            "name": name,
            "dataVersion": version,
            "files": [
                {
                    "type": "data",
                    "uri": f"s3://{BUCKET}/{folder}/{name}.nc",
                    "name": f"{name}.nc",
                    "size": len(data),
                    "checksumType": "SHA256",
                    "checksum": hashlib.sha256(data).hexdigest(),
                }
            ],
        },
    }


@contextmanager
def paused(rt: Runtime, role: str) -> Iterator[None]:
    """An outage of one function's event source mapping(s): nothing is delivered, then the mapping
    resumes from its checkpoints (what AWS does when a disabled mapping is enabled again)."""
    arn = rt.stack.function(role).arn if rt.stack else ""
    pollers = [p for p in rt.pollers if p.m.function_arn == arn]
    if not pollers:
        raise LookupError(f"no event source mapping delivers to {role}")
    for p in pollers:
        p.run_once = lambda: False  # type: ignore[method-assign]
    for p in pollers:
        p.quiesce()  # a round under way could still deliver what is put from here on
    try:
        yield
    finally:
        for p in pollers:
            del p.run_once


def terraform(work: Path, *args: str) -> str:
    proc = subprocess.run(
        [str(localtf.TERRAFORM), f"-chdir={work}", *args, "-no-color"], capture_output=True, text=True, check=False
    )
    if proc.returncode:
        raise SystemExit(f"terraform {args[0]} failed:\n{proc.stdout[-3000:]}{proc.stderr[-3000:]}")
    return proc.stdout


class Runner:
    """Runs ``cnm-ingest ARGS`` as a process and prints the command and its output."""

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
        print(f"$ cnm-ingest {shown}", flush=True)
        proc = subprocess.run(
            [sys.executable, "-m", "cnm_ingest_cli", *args],
            env=self.env,
            cwd=self.workdir,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        out = "\n".join(line.rstrip() for line in (proc.stdout + proc.stderr).rstrip().splitlines())
        if out:
            print(out)
        if proc.returncode:
            print(f"(exit {proc.returncode})")
        print(flush=True)
        return proc.returncode


def note(text: str) -> None:
    print(f"# {text}", flush=True)


def cli_environment(endpoint: str, outputs: Path) -> dict[str, str]:
    """What an operator sets to point the CLI at the local AWS and the applied stack."""
    return {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ENDPOINT_URL": endpoint,
        "CNM_INGEST_OUTPUTS": str(outputs),
    }


def show_status(work: Path, endpoint: str) -> int:
    """`cnm-ingest status` on the stack applied in the Terraform directory ``work`` (demo/demo.py ends with it)."""
    print(f"$ export AWS_ENDPOINT_URL={endpoint} CNM_INGEST_OUTPUTS={work}")
    return Runner(work, cli_environment(endpoint, work))("status", "--since", "1h")


def main() -> int:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    logging.getLogger("moto").setLevel(logging.CRITICAL)
    import boto3

    import build

    build.build(ROOT / "build")  # the packages Terraform uploads
    with LocalAWS() as aws, tempfile.TemporaryDirectory(prefix="cnm-ingest-cli-demo-") as tmp:
        workdir = Path(tmp)
        work = localtf.stage(ROOT / "examples" / "complete", workdir / "complete", aws.endpoint)
        started = time.monotonic()
        terraform(work, "init", "-input=false")
        terraform(work, "apply", "-auto-approve", "-input=false")
        (workdir / "outputs.json").write_text(terraform(work, "output", "-json"))
        note(
            f"examples/complete applied to the local AWS at {aws.endpoint} in {time.monotonic() - started:.0f}s; "
            "`terraform output -json` saved to outputs.json"
        )
        env = cli_environment(aws.endpoint, workdir / "outputs.json")
        print(f"$ export AWS_ENDPOINT_URL={aws.endpoint} CNM_INGEST_OUTPUTS=outputs.json\n")
        run = Runner(workdir, env)
        session = boto3.Session(aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION)
        run("rules", "list")
        note("before the consumers start: the rule of the sample collection is disabled")
        run("rules", "disable", "cnm_samples")
        with Runtime(session, aws.endpoint, PREFIX, workdir / "runtime") as rt:
            scenario(rt, run, session.client("s3", endpoint_url=aws.endpoint), workdir)
    return 0


def scenario(rt: Runtime, run: Runner, s3: Any, workdir: Path) -> None:
    def stage(name: str, data: bytes) -> None:
        pipeline.stage_files(s3, [pipeline.Record(name, b"", "", {f"s3://{BUCKET}/incoming/{name}.nc": data})], REGION)

    def settle() -> None:
        if not rt.wait_idle(timeout=240):
            raise SystemExit(f"the pipeline did not settle: {rt.errors}")

    good, fixed, late = b"granule bytes " * 512, b"second granule " * 512, b"sample granule " * 512
    stage("demo-0001", good)
    stage("demo-0002", bytes(len(fixed)))  # the provider's mistake: right size, wrong bytes
    stage("demo-0004", late)
    inbox = workdir / "inbox"
    inbox.mkdir()
    (inbox / "demo-0001.json").write_text(json.dumps(cnm("demo-0001", good)))
    (inbox / "demo-0002.json").write_text(json.dumps(cnm("demo-0002", fixed)))
    broken = cnm("demo-0003", good)
    del broken["product"]["files"][0]["size"]
    (inbox / "demo-0003.json").write_text(json.dumps(broken))
    (inbox / "demo-0004.json").write_text(json.dumps(cnm("demo-0004", late, SAMPLES)))

    note("a provider sends four CNMs; the CLI refuses the invalid one with the reason")
    run("send", "inbox")
    settle()
    note("what happened in the last hour")
    run("status", "--since", "1h")
    run("status", "--granules", "--status", "FAILED")
    run("status", "demo-0002")

    note("the provider re-uploads the file; reingest it (duplicate handling forced to replace)")
    stage("demo-0002", fixed)
    run("reingest", "demo-0002")
    settle()
    run("status", "demo-0002")
    run("responses", "--identifier", "demo-0002")

    note("demo-0004 arrived while its rule was disabled: it is in the DLQ")
    run("dlq", "list")
    run("rules", "enable", "cnm_samples")
    cache = float(rt.stack.function("message_consumer").environment["RULES_CACHE_SECONDS"]) if rt.stack else 0.0
    note(f"consumers see a rule change within RULES_CACHE_SECONDS ({cache:.0f}s); waiting that long")
    time.sleep(cache + 1)
    run("dlq", "redrive", "--all", "--dry-run")
    run("dlq", "redrive", "--all")
    settle()
    run("status", "demo-0004")

    note("the consumer is down (an outage) while demo-0005 arrives; replay the window")
    stage("demo-0005", good + b"5")
    (inbox / "demo-0005.json").write_text(json.dumps(cnm("demo-0005", good + b"5")))
    with paused(rt, "message_consumer"):
        start = datetime.now(UTC).replace(microsecond=0)
        time.sleep(1)
        run("send", "inbox/demo-0005.json")
        time.sleep(1)
        run("replay", "--from", start.isoformat(), "--to", "now")
        settle()
        note("a second replay of the same window starts nothing")
        run("replay", "--from", start.isoformat(), "--to", "now")
    settle()
    run("responses", "--since", "1h")
    run("status", "--since", "1h")


if __name__ == "__main__":
    sys.exit(main())
