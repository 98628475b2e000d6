#!/usr/bin/env python3
"""Package the Lambda handlers into zips that the Terraform modules reference.

    python build.py                 # -> build/functions/*.zip, build/layers/deps.zip, build/manifest.json
    python build.py --out DIR       # somewhere else

Every handler in ``lambda_src/handlers/`` becomes ``functions/<name>.zip`` with
``<name>.py`` at the zip root and the shared package ``cnm_ingest/`` beside it
(Lambda handler string ``<name>.handler``). The runtime dependencies listed in
``pyproject.toml`` ``[project].dependencies`` (what the Lambda Python runtime
does not provide; boto3 is not among them) are installed by pip for the Lambda
platform and packaged once, as the layer ``layers/deps.zip`` under ``python/``.

Output is byte-identical across runs: entries sorted, fixed timestamps and
permissions, fixed compression level, no bytecode. ``manifest.json`` records
each zip's path, size, sha256 and base64sha256 (Terraform's
``source_code_hash``).
"""

from __future__ import annotations

import argparse
import ast
import base64
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import tomllib
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent
SRC = ROOT / "lambda_src"
SHARED_PACKAGE = "cnm_ingest"
RUNTIME = "python3.12"
PLATFORM = "manylinux2014_x86_64"
FIXED_TIME = (1980, 1, 1, 0, 0, 0)
FILE_MODE = 0o644 << 16
SKIP_PARTS = {"__pycache__", ".pytest_cache"}
SKIP_SUFFIXES = {".pyc", ".pyo"}
# Values the Python code fixes that the Terraform must match (IAM scopes), copied into
# manifest.json "constants" so they have one source: key -> (module under lambda_src, name).
CONSTANTS = {"payload_key_prefix": ("cnm_ingest/dlq.py", "PAYLOAD_KEY_PREFIX")}


def _files(base: Path):
    """Every file under ``base`` worth packaging, as (path, archive name) sorted by name."""
    out = []
    for path in base.rglob("*"):
        rel = path.relative_to(base)
        if path.is_dir() or SKIP_PARTS.intersection(rel.parts) or path.suffix in SKIP_SUFFIXES:
            continue
        out.append((path, rel.as_posix()))
    return out


def write_zip(dest: Path, entries: list[tuple[Path, str]]) -> None:
    """Write a deterministic zip of ``entries`` (source path, archive name)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_suffix(".tmp")
    with zipfile.ZipFile(tmp, "w") as zf:
        for src, name in sorted(entries, key=lambda e: e[1]):
            info = zipfile.ZipInfo(name, date_time=FIXED_TIME)
            info.external_attr = FILE_MODE
            info.create_system = 3  # unix, whatever the build host
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, src.read_bytes(), compresslevel=9)
    tmp.replace(dest)


def describe(path: Path, base: Path) -> dict:
    data = path.read_bytes()
    digest = hashlib.sha256(data)
    return {
        "filename": path.relative_to(base).as_posix(),
        "size": len(data),
        "sha256": digest.hexdigest(),
        "base64sha256": base64.b64encode(digest.digest()).decode("ascii"),
    }


def handler_names() -> list[str]:
    return sorted(p.stem for p in (SRC / "handlers").glob("*.py") if p.stem != "__init__")


def build_functions(out: Path) -> dict:
    shared = [(p, f"{SHARED_PACKAGE}/{name}") for p, name in _files(SRC / SHARED_PACKAGE)]
    functions = {}
    for name in handler_names():
        dest = out / "functions" / f"{name}.zip"
        write_zip(dest, [(SRC / "handlers" / f"{name}.py", f"{name}.py"), *shared])
        functions[name] = {**describe(dest, out), "handler": f"{name}.handler"}
    return functions


def runtime_requirements() -> list[str]:
    with open(ROOT / "pyproject.toml", "rb") as fh:
        return list(tomllib.load(fh)["project"]["dependencies"])


def build_layer(out: Path) -> dict:
    """pip-install the runtime dependencies for the Lambda platform and zip them."""
    reqs = runtime_requirements()
    with tempfile.TemporaryDirectory() as tmp:
        target = Path(tmp) / "python"
        cmd = [
            sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
            "--no-compile", "--no-deps", "--only-binary=:all:",
            "--platform", PLATFORM, "--implementation", "cp",
            "--python-version", RUNTIME.removeprefix("python"),
            "--target", str(target), *reqs,
        ]
        env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "SOURCE_DATE_EPOCH": "315532800"}
        subprocess.run(cmd, check=True, env=env)
        # pip writes its own record of the install time-free metadata only; scripts
        # in bin/ are of no use in a layer.
        shutil.rmtree(target / "bin", ignore_errors=True)
        dest = out / "layers" / "deps.zip"
        write_zip(dest, [(p, f"python/{name}") for p, name in _files(target)])
    return {**describe(dest, out), "requirements": reqs}


def constants() -> dict:
    """The CONSTANTS, read from the module sources (literal assignments) without importing them.

    A module that is not in the source tree gives no constant (Terraform then fails on the
    missing key); a module that does not assign the name stops the build."""
    out = {}
    for key, (module, name) in CONSTANTS.items():
        if not (SRC / module).exists():
            continue
        for node in ast.parse((SRC / module).read_text()).body:
            if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name for t in node.targets):
                try:
                    out[key] = ast.literal_eval(node.value)
                except ValueError:
                    raise SystemExit(f"build.py: {module} assigns {name} a value that is not a literal") from None
        if key not in out:
            raise SystemExit(f"build.py: {module} assigns no literal {name}")
    return out


def build(out: Path, with_layer: bool = True) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    manifest = {"runtime": RUNTIME, "constants": constants(), "functions": build_functions(out), "layers": {}}
    if with_layer:
        manifest["layers"]["deps"] = build_layer(out)
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return manifest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "build", help="output directory (default: build/)")
    parser.add_argument("--no-layer", action="store_true", help="skip the dependency layer (no pip needed)")
    args = parser.parse_args(argv)
    manifest = build(args.out.resolve(), with_layer=not args.no_layer)
    for kind in ("functions", "layers"):
        for name, item in manifest[kind].items():
            print(f"{kind[:-1]:8} {name:20} {item['size']:>9} bytes  sha256 {item['sha256'][:16]}  {item['filename']}")
    print(f"manifest {args.out / 'manifest.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
