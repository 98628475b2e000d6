"""The release a DAAC adopts: `python build.py release`, and examples/daac-repo planning it.

- The archive (dist/cnm-ingest-<version>.zip) is built twice, by the documented command, and
  must be byte-identical; it holds the root module, modules/ and the packages stamped with
  the version and commit, nothing else.
- examples/daac-repo, the consumer repository, runs its own CI script (ci/check.sh: fmt,
  init, validate, tflint, checkov, plan) on the archive served over http from a local
  server, against a moto server for every call plan makes, with the STS endpoint pointing at
  a closed port (the plan needs no STS); then plans it again from an unpacked local path.
- The module refuses packages it cannot deploy: missing (a git-sourced module) and of
  another version, each with one sentence saying what to do.

These tests live in the Terraform tier (not tests/e2e): they plan and never apply, and share
the tier's provider mirror and moto server fixtures.
"""

from __future__ import annotations

import functools
import hashlib
import http.server
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
import zipfile
from pathlib import Path

import pytest

import build

from .tfhelpers import ROOT, check, provider_override, show_json, tf

pytestmark = [pytest.mark.terraform, pytest.mark.provider]

VERSION = (ROOT / "VERSION").read_text().strip()
ARCHIVE = f"cnm-ingest-{VERSION}.zip"
DAAC_REPO = ROOT / "examples" / "daac-repo"
RELEASE_SOURCE = f"https://example.org/your-org/cnm-ingest/releases/download/v{VERSION}/{ARCHIVE}"
CHECKOV = ROOT / ".tools" / "checkov" / "bin" / "checkov"
CLOSED_PORT_ENDPOINT = "http://127.0.0.1:9"  # discard port: nothing listens, a call fails at once
ENVIRONMENT = "sit"


def _release(out: Path, **env: str) -> subprocess.CompletedProcess:
    """The documented command, `python build.py release`, into ``out`` (the tree may be dirty under test)."""
    return subprocess.run(
        [sys.executable, str(ROOT / "build.py"), "release", "--allow-dirty", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=900,
        cwd=ROOT,
        env={**os.environ, **env},
    )


@pytest.fixture(scope="module")
def release(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dist-a")
    proc = _release(out)
    assert proc.returncode == 0, proc.stderr
    return out / ARCHIVE


@pytest.fixture(scope="module")
def releases(release, tmp_path_factory) -> tuple[Path, Path]:
    """The release built twice (the second with another hash seed, temporary directory and time zone:
    none may reach the bytes)."""
    out = tmp_path_factory.mktemp("dist-b")
    proc = _release(out, PYTHONHASHSEED="4242", TMPDIR=str(tmp_path_factory.mktemp("tmp")), TZ="Asia/Kolkata")
    assert proc.returncode == 0, proc.stderr
    return release, out / ARCHIVE


def test_two_release_builds_are_byte_identical(releases):
    a, b = releases
    digests = {hashlib.sha256(p.read_bytes()).hexdigest() for p in releases}
    print(f"\n{ARCHIVE}: {a.stat().st_size} and {b.stat().st_size} bytes, sha256 {sorted(digests)}")
    assert a.read_bytes() == b.read_bytes()


def test_release_holds_the_module_and_stamped_packages_only(release):
    with zipfile.ZipFile(release) as zf:
        infos = zf.infolist()
        manifest = json.loads(zf.read("build/manifest.json"))
        root_tf = {i.filename for i in infos if "/" not in i.filename and i.filename.endswith(".tf")}
    names = [i.filename for i in infos]
    assert names == sorted(names)
    assert {(i.date_time, i.external_attr >> 16) for i in infos} == {((1980, 1, 1, 0, 0, 0), 0o644)}
    assert root_tf == {p.name for p in ROOT.glob("*.tf")}
    assert "VERSION" in names and "README.md" in names
    tops = {n.split("/")[0] for n in names if "/" in n}
    assert tops == {"modules", "build"}, tops  # no tests, bench, localaws, tools, scripts, docs, lambda_src
    assert {n.split("/")[1] for n in names if n.startswith("modules/")} == {
        p.name for p in (ROOT / "modules").iterdir() if p.is_dir()
    }
    # the packages, at the module's default package_dir, as the manifest lists them
    listed = {f"build/{item['filename']}" for kind in ("functions", "layers") for item in manifest[kind].values()}
    assert {n for n in names if n.startswith("build/")} == listed | {"build/manifest.json"}
    assert "build/layers/deps.zip" in listed
    head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    assert (manifest["version"], manifest["commit"]) == (VERSION, head)
    assert isinstance(manifest["dirty"], bool)
    # nothing in the module runs Python (or anything else) on the consumer's machine
    for name in names:
        if name.endswith(".tf"):
            text = zipfile.ZipFile(release).read(name).decode()
            assert not re.search(r'data\s+"external"|provisioner\s+"|local-exec', text), name


def test_git_state_sees_commit_and_uncommitted_changes(tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    assert build.git_state(repo) == {"commit": None, "dirty": False}  # not a checkout
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.org"]
    subprocess.run([*git, "init", "-q"], check=True)
    (repo / "main.tf").write_text("# one\n")
    subprocess.run([*git, "add", "main.tf"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "one"], check=True)
    head = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
    assert build.git_state(repo) == {"commit": head, "dirty": False}
    (repo / "main.tf").write_text("# changed\n")
    assert build.git_state(repo) == {"commit": head, "dirty": True}
    subprocess.run([*git, "checkout", "-q", "main.tf"], check=True)
    (repo / "new.tf").write_text("# untracked\n")
    assert build.git_state(repo) == {"commit": head, "dirty": True}


def test_release_refuses_a_dirty_tree_unless_told(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(build, "git_state", lambda root=ROOT: {"commit": "0" * 40, "dirty": True})
    assert build.main(["release", "--out", str(tmp_path)]) == 2
    assert "uncommitted changes" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


def test_version_is_one_semantic_version_read_by_every_consumer():
    assert re.fullmatch(r"\d+\.\d+\.\d+", VERSION)
    assert build.version() == VERSION
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert 'dynamic = ["version"]' in pyproject and 'version = {file = "VERSION"}' in pyproject
    assert 'trimspace(file("${path.module}/VERSION"))' in (ROOT / "packages.tf").read_text()


# --------------------------------------------------------------------------- #
# The consumer repository's CI script on the release
# --------------------------------------------------------------------------- #


@pytest.fixture(scope="module")
def served_release(release):
    """The archive on a local HTTP server, as a DAAC downloads it from the release page."""
    handler = functools.partial(_QuietHandler, directory=str(release.parent))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/{ARCHIVE}"
    server.shutdown()
    server.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):
        pass


def _account(endpoint: str) -> None:
    """What the NGAP account has before the DAAC plans: the application VPC and its private subnets
    (tagged as NGAP tags them) and the DAAC's alarm topic, in the local AWS."""
    import boto3

    kwargs = {
        "endpoint_url": endpoint,
        "region_name": "us-west-2",
        "aws_access_key_id": "t",
        "aws_secret_access_key": "t",
    }
    ec2 = boto3.client("ec2", **kwargs)
    if ec2.describe_vpcs(Filters=[{"Name": "tag:Name", "Values": ["Application VPC"]}])["Vpcs"]:
        return
    vpc = ec2.create_vpc(CidrBlock="10.30.0.0/16")["Vpc"]["VpcId"]
    ec2.create_tags(Resources=[vpc], Tags=[{"Key": "Name", "Value": "Application VPC"}])
    for i, zone in enumerate("ab"):
        subnet = ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.30.{i}.0/24", AvailabilityZone=f"us-west-2{zone}")
        name = f"Private application us-west-2{zone} subnet"
        ec2.create_tags(Resources=[subnet["Subnet"]["SubnetId"]], Tags=[{"Key": "Name", "Value": name}])
    boto3.client("sns", **kwargs).create_topic(Name=f"lpdaac-{ENVIRONMENT}-ops-alarms")


def _consumer_repo(dest: Path, source: str, endpoint: str) -> Path:
    """examples/daac-repo copied to ``dest``, sourcing the release at ``source``, its provider sent to the
    local AWS with STS at a closed port (override file, formatted as `terraform fmt` wants it)."""
    shutil.copytree(DAAC_REPO, dest, ignore=shutil.ignore_patterns(".terraform*", "tfplan", "*.tfstate*"))
    main = dest / "main.tf"
    assert RELEASE_SOURCE in main.read_text()
    main.write_text(main.read_text().replace(RELEASE_SOURCE, source))
    override = provider_override(endpoint).replace(f'sts = "{endpoint}"', f'sts = "{CLOSED_PORT_ENDPOINT}"')
    assert "skip_requesting_account_id  = true" in override and CLOSED_PORT_ENDPOINT in override
    (dest / "localaws_override.tf").write_text(override)
    check(tf(dest, "fmt", "localaws_override.tf"))
    return dest


def _tflint() -> str:
    proc = subprocess.run(
        ["bash", str(ROOT / "tools" / "tflint.sh"), "--path"], capture_output=True, text=True, timeout=1800
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip().splitlines()[-1]


def _accepted_checkov_findings() -> set[str]:
    """The check ids the module accepts by a reasoned skip in this repository's .checkov.yaml (none once
    every accepted finding is an inline skip next to its resource)."""
    config = ROOT / ".checkov.yaml"
    text = config.read_text() if config.exists() else ""
    return set(re.findall(r"^\s*-\s*(CKV2?_[A-Z]+_\d+)\b", text, flags=re.M))


@pytest.fixture(scope="module")
def consumer_run(mirror, served_release, moto_server, tmp_path_factory):
    """ci/check.sh sit on the consumer repository sourcing the served archive; (repo, output, seconds)."""
    assert CHECKOV.exists(), "checkov is not installed: run scripts/setup.sh"
    _account(moto_server)
    repo = _consumer_repo(tmp_path_factory.mktemp("daac") / "daac-repo", served_release, moto_server)
    # what a CI runner has: tool commands, no AWS credentials or profile (the override carries test keys)
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(TERRAFORM=f"{sys.executable} {ROOT / 'tools' / 'tf.py'}", TFLINT=_tflint(), CHECKOV=str(CHECKOV))
    start = time.monotonic()
    proc = subprocess.run(
        ["bash", "ci/check.sh", ENVIRONMENT], cwd=repo, capture_output=True, text=True, timeout=900, env=env
    )
    seconds = time.monotonic() - start
    output = proc.stdout + proc.stderr
    transcript = tmp_path_factory.mktemp("transcript") / f"ci-check-{ENVIRONMENT}.txt"
    transcript.write_text(output)
    # the transcript without the plan's resource bodies and checkov's module-loader warnings
    brief = [
        line
        for line in output.splitlines()
        if re.match(BRIEF, line) or re.match(r"\S+\.tf:\d+:\d+: ", line)  # the last: tflint --format=compact
    ]
    print(f"\n--- ci/check.sh {ENVIRONMENT} ({seconds:.1f} s, exit {proc.returncode}; all of it: {transcript}) ---")
    print("\n".join(brief))
    return repo, output, proc.returncode


BRIEF = r"(step |Plan: |plan: |Passed checks|Check: |\s+(FAILED|SKIPPED) for|[a-z]+\s+[\d.]+s  |FAILED|all steps)"


def _steps(output: str) -> dict[str, tuple[float, int]]:
    return {m[1]: (float(m[2]), int(m[3])) for m in re.finditer(r"^step (\w+): ([\d.]+)s, exit (\d+)$", output, re.M)}


def test_consumer_ci_script_passes_on_the_release(consumer_run):
    _repo, output, rc = consumer_run
    steps = _steps(output)
    assert list(steps) == ["fmt", "init", "validate", "tflint", "checkov", "plan"], output[-4000:]
    for name in ("fmt", "init", "validate", "tflint", "plan"):
        assert steps[name][1] == 0, f"{name} failed:\n{output[-8000:]}"
    assert re.search(r"^plan: changes to apply \(exit 2\)$", output, re.M), "plan -detailed-exitcode gave no 2"
    # checkov scanned the release's modules (downloaded), not only the consumer's module block
    (summary,) = re.findall(r"Passed checks: (\d+), Failed checks: (\d+), Skipped checks: (\d+)", output)
    passed, failed, _skipped = map(int, summary)
    assert passed > 100, summary
    failed_ids = set(re.findall(r"Check: (CKV2?_[A-Z]+_\d+):.*\n\s*FAILED", output))
    accepted = _accepted_checkov_findings()
    assert failed_ids <= accepted, f"findings the module has not accepted: {sorted(failed_ids - accepted)}"
    assert (failed == 0) == (steps["checkov"][1] == 0) == (rc == 0)


def test_consumer_plan_deploys_the_release_without_sts(consumer_run):
    repo, _output, _rc = consumer_run
    plan = show_json(repo, "tfplan")
    assert plan["planned_values"]["outputs"]["cnm_ingest_version"]["value"] == VERSION
    creates = [r for r in plan["resource_changes"] if r["change"]["actions"] == ["create"]]
    assert len(creates) > 100
    print(f"\nresources planned: {len(creates)} to create")
    functions = {r["address"]: r["change"]["after"] for r in creates if r["type"] == "aws_lambda_function"}
    assert len(functions) == 12  # ten in the pipeline, the recorder, reconcile
    for address, fn in functions.items():
        # the packages the archive carries, where Terraform unpacked the module
        assert fn["filename"].startswith(".terraform/modules/cnm_ingest/build/functions/"), (address, fn["filename"])
        assert (repo / fn["filename"]).is_file()
        assert fn["vpc_config"][0]["subnet_ids"], address  # the NGAP subnets the data source found
    roles = [r["change"]["after"] for r in creates if r["type"] == "aws_iam_role"]
    assert {r["permissions_boundary"] for r in roles} == {"arn:aws:iam::111111111111:policy/NGAPShRoleBoundary"}
    # the account id came from env/sit.tfvars: nothing read STS (its endpoint is a closed port)
    buckets = {r["change"]["after"]["bucket"] for r in creates if r["type"] == "aws_s3_bucket"}
    assert "lpdaac-cnm-sit-payloads-111111111111" in buckets
    reads = [
        r["address"] for r in plan.get("prior_state", {}).get("values", {}).get("root_module", {}).get("resources", [])
    ]
    assert not [a for a in reads if "aws_caller_identity" in a]


def test_consumer_plans_the_release_from_a_local_path(release, mirror, moto_server, tmp_path):
    """The unpacked archive as a local module source (a DAAC vendoring the release)."""
    _account(moto_server)
    unpacked = tmp_path / f"cnm-ingest-{VERSION}"
    zipfile.ZipFile(release).extractall(unpacked)
    repo = _consumer_repo(tmp_path / "daac-repo", f"../cnm-ingest-{VERSION}", moto_server)
    check(tf(repo, "init", "-input=false", "-no-color"))
    out = check(tf(repo, "plan", "-input=false", "-no-color", "-lock=false", f"-var-file=env/{ENVIRONMENT}.tfvars"))
    assert re.search(r"Plan: \d{3} to add, 0 to change, 0 to destroy", out), out[-2000:]
    assert re.search(rf'cnm_ingest_version\s+= "{re.escape(VERSION)}"', out), out[-2000:]


# --------------------------------------------------------------------------- #
# Packages the module cannot deploy
# --------------------------------------------------------------------------- #


def test_plan_stops_with_one_sentence_on_missing_or_mismatched_packages(release, mirror, moto_server, tmp_path):
    """Two instances in one plan: the module as git gives it (no build/), and the module with packages of
    another version (package_dir). Each fails the plan with its own message, and no raw file() error."""
    module = tmp_path / "module"
    zipfile.ZipFile(release).extractall(module)
    old = tmp_path / "old-packages"
    shutil.move(module / "build", old)  # now the module is what a git checkout holds
    manifest = json.loads((old / "manifest.json").read_text())
    (old / "manifest.json").write_text(json.dumps({**manifest, "version": "0.1.0", "commit": "0" * 40}))
    root = tmp_path / "root"
    root.mkdir()
    (root / "main.tf").write_text(
        f"""
module "from_git" {{
  source              = "../module"
  prefix              = "cnm-git"
  staging_bucket_name = "staging"
  account_id          = "123456789012"
}}

module "old_packages" {{
  source              = "../module"
  prefix              = "cnm-old"
  staging_bucket_name = "staging"
  account_id          = "123456789012"
  package_dir         = "{old}"
}}
"""
    )
    (root / "override.tf").write_text(provider_override(moto_server))
    check(tf(root, "init", "-input=false", "-no-color"))
    proc = tf(root, "plan", "-input=false", "-no-color", "-lock=false")
    assert proc.returncode == 1, proc.stdout[-3000:]
    err = re.sub(r"\s+", " ", proc.stderr.replace("│", " "))
    missing = (
        f"cnm-ingest {VERSION} has no Lambda packages at ../module/build/manifest.json: use the release archive "
        f"cnm-ingest-{VERSION}.zip as the module source (it carries them), or run `python build.py --out DIR` "
        "in a checkout of this version and set package_dir = DIR."
    )
    mismatch = (
        f"cnm-ingest {VERSION} cannot deploy the Lambda packages at {old}: their manifest says version 0.1.0 "
        f"(commit {'0' * 40}), built from another version of the module"
    )
    assert missing in err, err[-3000:]
    assert mismatch in err, err[-3000:]
    errors = re.findall(r"Error: ([^\n│]+)", proc.stderr)
    assert errors == ["Module output value precondition failed"] * 2, errors
    assert "no file exists" not in err and "Invalid function argument" not in err
