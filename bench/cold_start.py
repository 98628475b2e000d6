"""Cold start: import time of each handler against a bare boto3 handler, in fresh processes.

Each handler zip from ``build.py`` and the dependency layer are unpacked the
way Lambda lays them out (``/var/task``, ``/opt/python``) into a read-only
directory, beside a "runtime" directory holding the boto3 that the Lambda
Python runtime provides (copied from this environment, compiled like the
runtime's). A fresh interpreter of the Lambda runtime's Python (3.12, found by
:func:`build.runtime_python`; the local interpreter when none is found, which
is then said in the row's limit) times ``import <handler>`` with nothing
written back (``PYTHONDONTWRITEBYTECODE``, as on Lambda's read-only
``/var/task``). Runs alternate bare / handler so drift hits both alike; the
ratio is the median of the per-pair ratios. Two more rows say where
message_consumer's time goes: the same handler packaged without bytecode
(``build.py --no-bytecode``), and its Powertools imports alone (the most that
importing less of Powertools could save); one more is the floor of a handler
that uses Powertools' batch processing: boto3 and those Powertools imports,
nothing of ours. Two last measures, in fresh processes: four AWS clients
through ``cnm_ingest.aws`` against four from one boto3 Session, and the CNM
notification validator made ready for the first record, imported from the
generated module (``cnm.validate.compiled``) against compiling the same schema with
fastjsonschema at run time (what the functions did before).
"""

from __future__ import annotations

import inspect
import os
import statistics
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from .common import ROOT, Row, row

sys.path.insert(0, str(ROOT))
import build
from localaws.lambda_python import runtime_site

BARE = "import boto3\n\n\ndef handler(event, context):\n    return {}\n"
# message_consumer's Powertools imports, and nothing of ours.
POWERTOOLS_ONLY = (
    "from aws_lambda_powertools.metrics import MetricUnit\n"
    "from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response\n"
    "from aws_lambda_powertools.utilities.data_classes.kinesis_stream_event import KinesisStreamRecord\n"
    "from aws_lambda_powertools import Logger, Metrics\n"
)
SYNTHETIC = {"bare": BARE, "powertools_only": POWERTOOLS_ONLY, "boto3_powertools": "import boto3\n" + POWERTOOLS_ONLY}
TIMER = (
    "import sys, time, importlib\n"
    "sys.path[0:0] = sys.argv[2].split(':')\n"
    "t = time.perf_counter()\n"
    "importlib.import_module(sys.argv[1])\n"
    "print(time.perf_counter() - t)\n"
)
CLIENTS = (
    "import sys, time\n"
    "sys.path[0:0] = sys.argv[2].split(':')\n"
    "import boto3\n"
    "from cnm_ingest import aws\n"
    "services = ('s3', 'sqs', 'sns', 'stepfunctions')\n"
    "t = time.perf_counter()\n"
    "if sys.argv[1] == 'aws':\n"
    "    [aws.client(s) for s in services]\n"
    "else:\n"
    "    session = boto3.session.Session()\n"
    "    [session.client(s) for s in services]\n"
    "print(time.perf_counter() - t)\n"
)
VALIDATOR = (
    "import sys, time\n"
    "sys.path[0:0] = sys.argv[2].split(':')\n"
    "import boto3\n"
    "from cnm_ingest.cnm import validate as cnm\n"
    "t = time.perf_counter()\n"
    "if sys.argv[1] == 'generated':\n"
    "    cnm.compiled('notification')\n"
    "else:\n"
    "    import fastjsonschema\n"
    "    fastjsonschema.compile(cnm.fast_notification_schema())\n"
    "print(time.perf_counter() - t)\n"
)


def lay_out(out: Path, handler: str, work: Path) -> list[str]:
    """Unpack a handler zip and the layer like Lambda does; return its sys.path entries."""
    task = work / handler / "task"
    opt = work / handler / "opt"
    if handler in SYNTHETIC:
        task.mkdir(parents=True)
        (task / f"{handler}.py").write_text(SYNTHETIC[handler])
    else:
        zipfile.ZipFile(out / "functions" / f"{handler}.zip").extractall(task)
    layer = out / "layers" / "deps.zip"
    zipfile.ZipFile(layer).extractall(opt)
    for p in [task, opt, *task.rglob("*"), *opt.rglob("*")]:
        p.chmod(0o555 if p.is_dir() else 0o444)
    return [str(task), str(opt / "python")]


def _time(python: str, script: str, module: str, path: list[str]) -> float:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env.update(
        PYTHONDONTWRITEBYTECODE="1",
        AWS_DEFAULT_REGION="us-west-2",
        AWS_ACCESS_KEY_ID="x",
        AWS_SECRET_ACCESS_KEY="x",
        POWERTOOLS_SERVICE_NAME="bench",
        POWERTOOLS_METRICS_NAMESPACE="bench",
    )
    res = subprocess.run(
        [python, "-s", "-c", script, module, ":".join(path)], env=env, cwd="/", capture_output=True, text=True
    )
    if res.returncode:
        raise RuntimeError(f"{module}: {res.stderr.strip()[-2000:]}")
    return float(res.stdout.strip().splitlines()[-1])


def run(quick: bool = False) -> list[Row]:
    runs = 5 if quick else 15
    python = build.runtime_python() if hasattr(build, "runtime_python") else None
    note = ""
    if python is None:
        python, note = sys.executable, f" (python{sys.version_info[0]}.{sys.version_info[1]}: no python3.12 found)"
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "cnm-ingest" / "bench"
    runtime = runtime_site(python, cache)
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="cold-start-", ignore_cleanup_errors=True) as tmp:
        work = Path(tmp)
        out = work / "build"
        build.build(out)
        handlers = build.handler_names()
        # name -> (module to import, sys.path): every handler as packaged, and two variants of
        # message_consumer that say where its time goes: packaged without bytecode, and only its
        # Powertools imports (the most that importing less of Powertools could save).
        cases = {h: (h, [*lay_out(out, h, work), str(runtime)]) for h in ["bare", *handlers]}
        if "bytecode" in inspect.signature(build.build).parameters:
            sources = work / "build-sources"
            build.build(sources, bytecode=False)
            cases["message_consumer, no bytecode"] = (
                "message_consumer",
                [*lay_out(sources, "message_consumer", work / "sources"), str(runtime)],
            )
        cases["powertools imports of message_consumer"] = (
            "powertools_only",
            [*lay_out(out, "powertools_only", work), str(runtime)],
        )
        cases["boto3 + message_consumer's Powertools imports (floor of a batch handler)"] = (
            "boto3_powertools",
            [*lay_out(out, "boto3_powertools", work), str(runtime)],
        )
        measured = [c for c in cases if c != "bare"]
        times: dict[str, list[float]] = {c: [] for c in cases}
        bare_before: dict[str, list[float]] = {c: [] for c in measured}
        clients: dict[str, list[float]] = {"aws": [], "session": []}
        validator: dict[str, list[float]] = {"generated": [], "compile": []}
        has_generated = (ROOT / "lambda_src" / "cnm_ingest" / "cnm" / "notification_validator.py").exists()
        for _ in range(runs):
            for case in measured:
                b = _time(python, TIMER, "bare", cases["bare"][1])
                times["bare"].append(b)
                bare_before[case].append(b)
                times[case].append(_time(python, TIMER, *cases[case]))
            for kind, samples in clients.items():
                samples.append(_time(python, CLIENTS, kind, cases["message_consumer"][1]))
            for kind in validator if has_generated else ():
                validator[kind].append(_time(python, VALIDATOR, kind, cases["message_consumer"][1]))
        # Each run is paired with the bare run just before it; the ratio is the median of the pairs.
        bare = statistics.median(times["bare"])
        for case in measured:
            ratio = statistics.median(t / b for t, b in zip(times[case], bare_before[case], strict=True))
            goal = "<= 1.3" if case in handlers else ""
            name = f"cold start: import {case}" if case in handlers else f"cold start: {case}"
            rows.append(
                row(
                    name,
                    statistics.median(times[case]) * 1000,
                    "ms",
                    f"bare boto3 handler {bare * 1000:.0f} ms{note}",
                    ratio,
                    goal,
                )
            )
        one = statistics.median(clients["session"])
        ours = statistics.median(clients["aws"])
        ratio = statistics.median(a / b for a, b in zip(clients["aws"], clients["session"], strict=True))
        rows.append(
            row(
                "4 AWS clients via cnm_ingest.aws",
                ours * 1000,
                "ms",
                f"one boto3 Session {one * 1000:.0f} ms",
                ratio,
                "<= 1.1",
            )
        )
        if has_generated:
            ratio = statistics.median(a / b for a, b in zip(validator["generated"], validator["compile"], strict=True))
            rows.append(
                row(
                    "first record: CNM validator imported (cnm_ingest/cnm/notification_validator.py)",
                    statistics.median(validator["generated"]) * 1000,
                    "ms",
                    f"compiled at run time {statistics.median(validator['compile']) * 1000:.1f} ms",
                    ratio,
                )
            )
        for p in work.rglob("*"):
            if p.is_dir():
                p.chmod(0o755)
    return rows
