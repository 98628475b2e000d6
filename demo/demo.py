#!/usr/bin/env python3
"""The demo, on what Terraform deploys: apply an example to a local AWS, run it, send
traffic, say what became of every record.

    python demo/demo.py [--example complete] [--generated 20] [--destroy]
    (scripts/demo.sh sets up and builds the packages first)

1. the AWS provider: from the Terraform registry when it is reachable, else from the
   offline mirror (built first when absent: 20-35 minutes on 2 cores, said up front);
2. the local AWS: moto on loopback with the project's listed patches (localaws);
3. `terraform init` + `apply` of the example, pointed at it;
4. the runtime (localaws.runtime) reads what Terraform created and runs it as AWS does;
5. traffic: the official CNM samples (files staged so the checksums match), generated
   notifications, and poison pills;
6. progress until everything is delivered and every workflow has ended;
7. each record's fate and the totals (records in = workflows + DLQ entries).

The local AWS lives in this process and is thrown away when the demo exits, so by default
nothing is destroyed (a `terraform destroy` of it costs minutes: the provider waits after
each SQS delete). ``--destroy`` ends with one, as on a real account.
"""

from __future__ import annotations

import argparse
import logging
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "lambda_src")]

from demo.cli_demo import show_status  # noqa: E402
from localaws import pipeline  # noqa: E402
from localaws import terraform as localtf  # noqa: E402
from localaws.deployed import Stack  # noqa: E402
from localaws.runtime import Runtime  # noqa: E402
from localaws.server import REGION, LocalAWS  # noqa: E402
from tools import tf as tfcli  # noqa: E402

PROVIDER_BUILD_MINUTES = "20-35"
PREFIXES = {"complete": "cnm-complete", "minimal": "cnm-minimal"}


def say(message: str) -> None:
    print(message, flush=True)


def provider_source(env: dict[str, str]) -> str:
    """Set up `terraform init` to take hashicorp/aws from the registry or the offline mirror."""
    if env.get("CNM_TF_CLI_CONFIG"):
        return f"what the CLI config {env['CNM_TF_CLI_CONFIG']} (CNM_TF_CLI_CONFIG) says"
    if localtf.registry_reachable():
        config = Path(tempfile.mkdtemp()) / "terraformrc"
        config.write_text(f'plugin_cache_dir = "{tfcli.CACHE_DIR / "plugin-cache"}"\n')
        env["CNM_TF_CLI_CONFIG"] = str(config)
        return "the Terraform registry"
    binary = next(tfcli.MIRROR.glob("registry.terraform.io/hashicorp/aws/*/*/terraform-provider-aws_v*"), None)
    if binary is None:
        say(f"The Terraform registry is not reachable and the offline mirror ({tfcli.MIRROR}) has no AWS provider:")
        say(
            f"building it now from the Go module proxy (tools/terraform-provider.sh); expect {PROVIDER_BUILD_MINUTES} "
            "minutes on 2 cores, once (it is cached outside the repository)."
        )
        subprocess.run(["bash", str(ROOT / "tools" / "terraform-provider.sh")], check=True, stdout=subprocess.DEVNULL)
    return f"the offline mirror {tfcli.MIRROR}"


def terraform(work: Path, env: dict[str, str], *args: str, label: str) -> float:
    """Run tools/terraform with a heartbeat every 15 s; returns the seconds it took."""
    start = time.monotonic()
    done = threading.Event()

    def heartbeat() -> None:
        while not done.wait(15):
            say(f"   ... {label}: {time.monotonic() - start:.0f}s")

    threading.Thread(target=heartbeat, daemon=True).start()
    try:
        proc = subprocess.run(
            [str(localtf.TERRAFORM), f"-chdir={work}", *args], env=env, capture_output=True, text=True, check=False
        )
    finally:
        done.set()
    if proc.returncode != 0:
        say(proc.stdout[-4000:] + proc.stderr[-4000:])
        raise SystemExit(f"terraform {args[0]} failed")
    return time.monotonic() - start


def progress(
    runtime: Runtime, sfn: Any, sqs: Any, machines: list[str], dlq_url: str, total: int, timeout: float
) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        idle = runtime.wait_idle(timeout=3, settle=2)
        statuses: Counter[str] = Counter()
        for arn in machines:
            statuses.update(e["status"] for e in sfn.list_executions(stateMachineArn=arn)["executions"])
        depth = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["ApproximateNumberOfMessages"])
        delivered = sum(s.records_delivered for s in runtime.mapping_stats.values())
        say(
            f"   records put {total}; delivered to functions {delivered}; executions {dict(statuses)}; "
            f"DLQ messages {depth['Attributes']['ApproximateNumberOfMessages']}; "
            f"invocations {sum(runtime.invocations.values())} ({sum(runtime.invocation_errors.values())} failed)"
            + (f"; runtime errors: {runtime.errors[-3:]}" if runtime.errors else "")
            + (f"; busy: {runtime.busy_reasons()[:3]}" if not idle else "")
        )
        if idle:
            return True
    return False


def enabled_rules(ddb: Any, stack: Stack) -> int:
    """ENABLED rules in the applied rules table (the consumer's RULES_TABLE)."""
    table = stack.function("message_consumer").environment["RULES_TABLE"]
    pages = ddb.get_paginator("scan").paginate(TableName=table)
    return sum(1 for page in pages for item in page["Items"] if item.get("state", {}).get("S") == "ENABLED")


def executions_recorded(ddb: Any, stack: Stack) -> dict[str, int] | None:
    """Execution records by status, as the deployed recorder wrote them (None: no recorder)."""
    try:
        table = stack.function("recorder").environment["EXECUTIONS_TABLE"]
    except KeyError:
        return None
    statuses: Counter[str] = Counter()
    for page in ddb.get_paginator("scan").paginate(TableName=table):
        statuses.update(i["status"]["S"] for i in page["Items"] if i["sk"]["S"] == "EXECUTION")
    return dict(statuses)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--example", default="complete", choices=sorted(PREFIXES))
    parser.add_argument("--generated", type=int, default=20, help="generated notifications to send")
    parser.add_argument(
        "--destroy",
        action="store_true",
        help="end with `terraform destroy` (minutes; by default the throw-away local AWS is discarded on exit)",
    )
    parser.add_argument("--timeout", type=float, default=300)
    return parser.parse_args(argv)


def quiet_env() -> dict[str, str]:
    """This process's environment without what would point Terraform at a real account or endpoint."""
    env = dict(os.environ)
    for key in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_SESSION_TOKEN"):
        env.pop(key, None)
    return env


def managed_resources(work: Path, env: dict[str, str]) -> list[str]:
    """The resources (not data sources) in the applied state."""
    resources = subprocess.run(
        [str(localtf.TERRAFORM), f"-chdir={work}", "state", "list"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return [r for r in resources if not r.startswith("data.") and ".data." not in r]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    logging.getLogger("moto").setLevel(logging.CRITICAL)  # its interpreter logs every caught task error
    started = time.monotonic()
    env = quiet_env()

    say(f"1/7 AWS provider\n   from {provider_source(env)}\n2/7 local AWS")
    import boto3

    with LocalAWS() as aws, tempfile.TemporaryDirectory(prefix="cnm-demo-") as tmp:
        say(f"   moto with localaws patches at {aws.endpoint}")
        work = localtf.stage(ROOT / "examples" / args.example, Path(tmp) / args.example, aws.endpoint)
        say(f"3/7 terraform init + apply examples/{args.example}")
        t_init = terraform(work, env, "init", "-input=false", "-no-color", label="init")
        t_apply = terraform(work, env, "apply", "-auto-approve", "-input=false", "-no-color", label="apply")
        managed = managed_resources(work, env)
        say(f"   init {t_init:.0f}s, apply {t_apply:.0f}s: {len(managed)} resources")
        session = boto3.Session(aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION)
        client = lambda s: session.client(s, endpoint_url=aws.endpoint)  # noqa: E731
        prefix = PREFIXES[args.example]
        ok = True
        say("4/7 runtime from the deployed stack")
        with Runtime(session, aws.endpoint, prefix, Path(tmp) / "runtime") as rt:
            stack = rt.stack
            assert stack is not None
            say(
                f"   {len(stack.functions)} functions, {len(stack.mappings)} event source mappings "
                f"({len(rt.pollers)} shard pollers), {sum(s.protocol == 'lambda' for s in stack.subscriptions)} "
                f"SNS->Lambda subscriptions, {len(stack.state_machines)} state machine(s); logs in {tmp}/runtime/logs"
            )
            say("5/7 traffic")
            bucket = f"{prefix}-provider-outbox"
            samples = pipeline.sample_traffic(pipeline.shared_cnm_dir() / "samples", bucket)
            records = samples + pipeline.generated_traffic(args.generated, bucket) + pipeline.poison_traffic(bucket)
            if not enabled_rules(client("dynamodb"), stack):
                for record in records:
                    record.expect = pipeline.PARKED
                say(
                    f"   examples/{args.example} configures no rules: every notification is expected to be answered "
                    "(FAILURE) and parked in the DLQ, as on a fresh deployment"
                )
            staged = pipeline.stage_files(client("s3"), records, REGION)
            stream = stack.streams[f"{prefix}-notifications"]
            pipeline.put(client("kinesis"), stream, records)
            poison = len(records) - len(samples) - args.generated
            say(
                f"   {len(samples)} samples, {args.generated} generated, {poison} "
                f"poison pills put on {stream.rsplit('/', 1)[-1]}; {staged} files staged"
            )
            say("6/7 progress")
            machines = [m["stateMachineArn"] for m in stack.state_machines.values()]
            (dlq_url,) = [u for u in stack.queues if u.endswith("-kinesisFailure")]
            ok = progress(rt, client("stepfunctions"), client("sqs"), machines, dlq_url, len(records), args.timeout)
            fates = pipeline.fates(
                records,
                sfn=client("stepfunctions"),
                sqs=client("sqs"),
                kinesis=client("kinesis"),
                state_machine_arns=machines,
                dlq_url=dlq_url,
                response_stream_arn=stack.streams[f"{prefix}-responses"],
            )
            recorded = executions_recorded(client("dynamodb"), stack)
        say("7/7 fates")
        say(f"{'seq':>6}  {'record':52}  {'expected':19}  outcome")
        for fate in fates:
            r = fate.record
            detail = ", ".join(f"{e['status']}" for e in fate.executions)
            answers = Counter(
                m["response"]["status"]
                + ("/" + m["response"].get("errorCode", "") if m["response"].get("errorCode") else "")
                for m in fate.responses
                if "response" in m
            )
            extra = (f" [{detail}]" if len(fate.executions) > 1 else "") + (
                f" responses {dict(answers)}" if answers else ""
            )
            extra += f" ({len(fate.dlq)} DLQ entries)" if len(fate.dlq) > 1 else ""
            mark = "" if fate.outcome == r.expect else "   <-- unexpected"
            say(f"{(r.sequence_number or '')[-6:]:>6}  {r.label[:52]:52}  {r.expect:19}  {fate.outcome}{extra}{mark}")
        outcomes = Counter(f.outcome for f in fates)
        executions = sum(len(f.executions) for f in fates)
        parked = sum(1 for f in fates if f.dlq)
        statuses = dict(Counter(e["status"] for f in fates for e in f.executions))
        say(
            f"records in: {len(records)}; workflows: {executions} {statuses}; "
            f"parked in the DLQ: {parked}; lost: {outcomes.get('LOST', 0)}; as expected: "
            f"{sum(f.outcome == f.record.expect for f in fates)}/{len(fates)}"
        )
        say(f"function invocations: {dict(rt.invocations)}")
        if recorded is not None:
            say(f"executions table (the recorder, from EventBridge status events): {recorded}")
        show_status(work, aws.endpoint)  # the operator's view: `cnm-ingest status` (README "Operating it")
        if args.destroy:
            protected = localtf.unprotect_tables(client("dynamodb"), prefix)
            if protected:
                say(f"   deletion protection turned off (as an operator must) on: {', '.join(protected)}")
            t_destroy = terraform(work, env, "destroy", "-auto-approve", "-input=false", "-no-color", label="destroy")
            say(f"terraform destroy {t_destroy:.0f}s")
        else:
            say("not destroyed: the local AWS goes with this process (`scripts/demo.sh --destroy` destroys it first)")
    say(f"demo wall time {time.monotonic() - started:.0f}s")
    return 0 if ok and all(f.outcome == f.record.expect for f in fates) else 1


if __name__ == "__main__":
    sys.exit(main())
