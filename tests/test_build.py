"""build.py: deterministic packages and a manifest Terraform can trust."""

from __future__ import annotations

import base64
import hashlib
import json
import zipfile
from pathlib import Path

import pytest

import build


@pytest.fixture(scope="module")
def two_builds(tmp_path_factory):
    a = tmp_path_factory.mktemp("build-a")
    b = tmp_path_factory.mktemp("build-b")
    return build.build(a), a, build.build(b), b


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
            assert "cnm_ingest/schema/cnm-schema-1.6.1.json" in names
            # only this handler, not the others
            assert not [n for n in names if "/" not in n and n != f"{name}.py"]
            assert not [n for n in names if n.endswith(".pyc") or "__pycache__" in n]
            for info in zf.infolist():
                assert info.date_time == build.FIXED_TIME
                assert info.external_attr == build.FILE_MODE


def test_layer_vendors_runtime_dependencies_but_not_boto3(two_builds):
    manifest, out, _, _ = two_builds
    layer = manifest["layers"]["deps"]
    with zipfile.ZipFile(out / layer["filename"]) as zf:
        tops = {n.split("/")[1] for n in zf.namelist()}
    assert all(n.startswith("python/") for n in zipfile.ZipFile(out / layer["filename"]).namelist())
    assert {"aws_lambda_powertools", "fastjsonschema"} <= tops
    assert not {"boto3", "botocore"} & tops


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
