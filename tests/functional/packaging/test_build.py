"""build.py: deterministic packages and a manifest Terraform can trust."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import zipfile
from pathlib import Path

import pytest

import build

PYC_TAG = "cpython-312"


@pytest.fixture(scope="module")
def runtime_python() -> str:
    python = build.runtime_python()
    assert python, "no python3.12 interpreter found: the build needs one for the Lambda bytecode (LAMBDA_PYTHON)"
    return python


@pytest.fixture(scope="module")
def two_builds(tmp_path_factory, runtime_python):
    a = tmp_path_factory.mktemp("build-a")
    b = tmp_path_factory.mktemp("build-b")
    first = build.build(a)
    # The second build runs with another hash seed and temporary directory: neither may leak into the bytes.
    saved = dict(os.environ)
    os.environ.update(PYTHONHASHSEED="4242", TMPDIR=str(tmp_path_factory.mktemp("other-tmp")))
    try:
        second = build.build(b)
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return first, a, second, b


def _run(python: str, code: str, cwd: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    return subprocess.run(
        [python, "-s", "-c", code, *args],
        cwd=cwd,
        env={**env, "PYTHONDONTWRITEBYTECODE": "1"},
        capture_output=True,
        text=True,
    )


def test_two_builds_are_byte_identical(two_builds):
    manifest_a, a, manifest_b, b = two_builds
    files_a = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    files_b = sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    assert files_a == files_b
    assert len(files_a) >= 3  # at least one function, the layer, the manifest
    for rel in files_a:
        assert (a / rel).read_bytes() == (b / rel).read_bytes(), f"{rel} differs between builds"
    assert manifest_a == manifest_b


def test_every_handler_is_packaged_with_the_shared_package(two_builds):
    manifest, out, _, _ = two_builds
    assert set(manifest["functions"]) == set(build.handler_names())
    assert build.handler_names(), "no handlers found in lambda_src/handlers"
    for name, item in manifest["functions"].items():
        assert item["handler"] == f"{name}.handler"
        with zipfile.ZipFile(out / item["filename"]) as zf:
            names = zf.namelist()
            assert f"{name}.py" in names
            assert "cnm_ingest/__init__.py" in names
            assert "cnm_ingest/cnm/schema/cnm-schema-1.6.1.json" in names
            # the generated validators the functions import instead of compiling the schema (cnm.compiled)
            assert {"cnm_ingest/cnm/notification_validator.py", "cnm_ingest/cnm/response_validator.py"} <= set(names)
            # only this handler, not the others
            assert not [n for n in names if "/" not in n and n != f"{name}.py"]
            modules = {n for n in names if n.endswith(".py")}
            pycs = {n for n in names if n.endswith(".pyc")}
            assert pycs == {_pyc_name(m) for m in modules}, "exactly one 3.12 bytecode file per module"
            for info in zf.infolist():
                assert info.date_time == build.FIXED_TIME
                assert info.external_attr == build.FILE_MODE


def _pyc_name(module: str) -> str:
    folder, _, file = module.rpartition("/")
    return f"{folder + '/' if folder else ''}__pycache__/{file[:-3]}.{PYC_TAG}.pyc"


def test_bytecode_is_checked_hash_for_the_runtime_python(two_builds, runtime_python):
    manifest, out, _, _ = two_builds
    magic = _run(
        runtime_python, "import importlib.util, sys; sys.stdout.write(importlib.util.MAGIC_NUMBER.hex())", out
    ).stdout
    assert manifest["bytecode"]["python"].startswith("3.12.")
    assert manifest["bytecode"]["invalidation_mode"] == "checked-hash"
    zips = [out / i["filename"] for i in [*manifest["functions"].values(), *manifest["layers"].values()]]
    for path in zips:
        with zipfile.ZipFile(path) as zf:
            for name in (n for n in zf.namelist() if n.endswith(".pyc")):
                head = zf.read(name)[:16]
                assert head[:4].hex() == magic, f"{name}: not bytecode for {runtime_python}"
                flags = int.from_bytes(head[4:8], "little")
                assert flags == 0b11, f"{name}: not checked-hash bytecode (flags {flags:#b})"


def test_layer_ships_bytecode_for_every_module(two_builds):
    manifest, out, _, _ = two_builds
    with zipfile.ZipFile(out / manifest["layers"]["deps"]["filename"]) as zf:
        names = set(zf.namelist())
    modules = {n for n in names if n.endswith(".py")}
    assert len(modules) > 100
    assert {_pyc_name(m) for m in modules} <= names


def test_the_runtime_loads_the_shipped_bytecode_and_never_a_stale_one(two_builds, runtime_python, tmp_path):
    """Unpacked like /var/task: imports come from the bytecode; a changed source wins over its old bytecode."""
    manifest, out, _, _ = two_builds
    task = tmp_path / "task"
    zipfile.ZipFile(out / manifest["functions"]["message_consumer"]["filename"]).extractall(task)
    pyc = task / "cnm_ingest" / "__pycache__" / f"errors.{PYC_TAG}.pyc"
    code = "import sys; sys.path.insert(0, '.'); import cnm_ingest.errors as e; print(getattr(e, 'MARK', 'none'))"
    loaded = _run(runtime_python, code, task)
    verbose = subprocess.run(
        [runtime_python, "-s", "-v", "-c", code],
        cwd=task,
        capture_output=True,
        text=True,
        env={**{k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}, "PYTHONDONTWRITEBYTECODE": "1"},
    )
    assert loaded.returncode == 0, loaded.stderr
    assert loaded.stdout.strip() == "none"
    assert f"code object from '{pyc}'" in verbose.stderr
    # File names inside the bytecode are where Lambda runs it from.
    filename = _run(
        runtime_python,
        "import marshal, sys; print(marshal.loads(open(sys.argv[1], 'rb').read()[16:]).co_filename)",
        task,
        str(pyc),
    )
    assert filename.stdout.strip() == "/var/task/cnm_ingest/errors.py", filename.stderr
    # Edit the source (as the Lambda console would): the bytecode no longer matches its hash and is not used.
    src = task / "cnm_ingest" / "errors.py"
    src.write_text(src.read_text() + "\nMARK = 'edited'\n")
    before = pyc.read_bytes()
    edited = _run(runtime_python, code, task)
    assert edited.stdout.strip() == "edited", edited.stderr
    assert pyc.read_bytes() == before


def test_no_runtime_python_fails_the_build_unless_told(tmp_path, monkeypatch):
    monkeypatch.setattr(build, "runtime_python", lambda: None)
    with pytest.raises(build.BuildError, match="LAMBDA_PYTHON"):
        build.build(tmp_path / "out", with_layer=False)
    assert build.main(["--out", str(tmp_path / "cli"), "--no-layer"]) == 2
    manifest = build.build(tmp_path / "plain", with_layer=False, bytecode=False)
    assert manifest["bytecode"] is None
    with zipfile.ZipFile(tmp_path / "plain" / manifest["functions"]["logger"]["filename"]) as zf:
        assert not [n for n in zf.namelist() if n.endswith(".pyc") or "__pycache__" in n]


def test_stray_bytecode_in_the_source_tree_is_not_packaged(tmp_path, monkeypatch, runtime_python):
    """A __pycache__ left by a local run (another Python, other paths) never reaches a zip."""
    src = tmp_path / "lambda_src"
    (src / "handlers").mkdir(parents=True)
    (src / "cnm_ingest" / "__pycache__").mkdir(parents=True)
    (src / "cnm_ingest" / "__init__.py").write_text("")
    (src / "cnm_ingest" / "__pycache__" / "__init__.cpython-312.pyc").write_bytes(b"stale")
    (src / "cnm_ingest" / "__pycache__" / "gone.cpython-311.pyc").write_bytes(b"stale")
    (src / "handlers" / "one.py").write_text("def handler(e, c):\n    return 1\n")
    monkeypatch.setattr(build, "SRC", src)
    manifest = build.build(tmp_path / "out", with_layer=False)
    with zipfile.ZipFile(tmp_path / "out" / manifest["functions"]["one"]["filename"]) as zf:
        names = zf.namelist()
        assert sorted(names) == [
            "__pycache__/one.cpython-312.pyc",
            "cnm_ingest/__init__.py",
            "cnm_ingest/__pycache__/__init__.cpython-312.pyc",
            "one.py",
        ]
        assert zf.read("cnm_ingest/__pycache__/__init__.cpython-312.pyc") != b"stale"


def test_layer_vendors_runtime_dependencies_but_not_boto3(two_builds):
    manifest, out, _, _ = two_builds
    layer = manifest["layers"]["deps"]
    with zipfile.ZipFile(out / layer["filename"]) as zf:
        tops = {n.split("/")[1] for n in zf.namelist()}
    assert all(n.startswith("python/") for n in zipfile.ZipFile(out / layer["filename"]).namelist())
    assert {"aws_lambda_powertools", "fastjsonschema", "orjson"} <= tops
    assert not {"boto3", "botocore"} & tops


def test_layer_vendors_the_sftp_client_with_native_code_for_the_lambda_platform(two_builds, runtime_python, tmp_path):
    """paramiko and its compiled dependencies, as manylinux x86_64 wheels for python3.12, import from the layer."""
    manifest, out, _, _ = two_builds
    with zipfile.ZipFile(out / manifest["layers"]["deps"]["filename"]) as zf:
        names = zf.namelist()
        zf.extractall(tmp_path)
    tops = {n.split("/")[1] for n in names}
    assert {
        "paramiko",
        "cryptography",
        "bcrypt",
        "nacl",
        "cffi",
        "_cffi_backend.cpython-312-x86_64-linux-gnu.so",
    } <= tops
    native = [n for n in names if n.endswith(".so")]
    assert native and all("x86_64" in n or n.endswith("abi3.so") for n in native), native
    import platform

    if platform.machine() == "x86_64":  # the layer's native code runs here too: load it as Lambda would
        code = "import paramiko, sys; paramiko.ECDSAKey.generate(); sys.stdout.write(paramiko.__version__)"
        env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
        got = subprocess.run(
            [runtime_python, "-s", "-I", "-c", f"import sys; sys.path.insert(0, {str(tmp_path / 'python')!r}); {code}"],
            env=env,
            capture_output=True,
            text=True,
        )
        assert got.returncode == 0 and got.stdout == "5.1.0", got.stderr


def test_manifest_hashes_match_the_files(two_builds):
    manifest, out, _, _ = two_builds
    on_disk = json.loads((out / "manifest.json").read_text())
    assert on_disk == manifest
    for item in [*manifest["functions"].values(), *manifest["layers"].values()]:
        data = (out / item["filename"]).read_bytes()
        assert item["size"] == len(data)
        assert item["sha256"] == hashlib.sha256(data).hexdigest()
        assert item["base64sha256"] == base64.b64encode(hashlib.sha256(data).digest()).decode()


def test_a_source_change_changes_only_that_package(tmp_path, monkeypatch):
    """The hash Terraform sees moves when, and only when, the packaged code moves."""
    src = tmp_path / "lambda_src"
    (src / "handlers").mkdir(parents=True)
    (src / "cnm_ingest").mkdir()
    (src / "cnm_ingest" / "__init__.py").write_text("")
    (src / "handlers" / "one.py").write_text("def handler(e, c):\n    return 1\n")
    (src / "handlers" / "two.py").write_text("def handler(e, c):\n    return 2\n")
    monkeypatch.setattr(build, "SRC", src)
    first = build.build(tmp_path / "out1", with_layer=False)["functions"]
    (src / "handlers" / "two.py").write_text("def handler(e, c):\n    return 22\n")
    second = build.build(tmp_path / "out2", with_layer=False)["functions"]
    assert first["one"]["sha256"] == second["one"]["sha256"]
    assert first["two"]["sha256"] != second["two"]["sha256"]
