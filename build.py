#!/usr/bin/env python3
"""Package the Lambda handlers into zips that the Terraform modules reference.

    python build.py                 # -> build/functions/*.zip, build/layers/deps.zip, build/manifest.json
    python build.py --out DIR       # somewhere else
    python build.py release         # -> dist/cnm-ingest-<VERSION>.zip, the module a DAAC sources

Every handler in ``lambda_src/handlers/`` becomes ``functions/<name>.zip`` with
``<name>.py`` at the zip root and the shared package ``cnm_ingest/`` beside it
(Lambda handler string ``<name>.handler``). The runtime dependencies listed in
``pyproject.toml`` ``[project].dependencies`` (what the Lambda Python runtime
does not provide; boto3 is not among them) are installed by pip for the Lambda
platform and packaged once, as the layer ``layers/deps.zip`` under ``python/``.

Bytecode for the Lambda runtime's Python (3.12) is shipped beside every
module, functions and layer alike: ``/var/task`` and ``/opt`` are read-only on
Lambda, so without it every cold start compiles every module it imports, and
throws the result away. The bytecode is written by a Python 3.12 interpreter
(:func:`runtime_python`; ``LAMBDA_PYTHON`` names one) in ``checked-hash`` mode:
the source's hash, not its timestamp, is in the header, so it is deterministic
and is never used for a source it was not compiled from. File names inside it
are the paths Lambda runs them from (``/var/task/...``, ``/opt/python/...``).
``--no-bytecode`` builds without it when no 3.12 interpreter is at hand.

Output is byte-identical across runs: entries sorted, fixed timestamps and
permissions, fixed compression level, bytecode compiled with a fixed hash seed
by one process. ``manifest.json`` records each zip's path, size, sha256 and
base64sha256 (Terraform's ``source_code_hash``) and the Python that wrote the
bytecode. It is stamped with the module's version (the file ``VERSION``, the one
place it lives; the Terraform module reads it too and refuses packages of another
version) and the git commit it was built from, ``dirty`` when the tree had
changes.

``release`` builds the packages afresh and zips them with the root module
(``*.tf``, ``VERSION``, ``README.md``), ``modules/``, ``LICENSE`` and ``CHANGELOG.md``: the files
git tracks there, nothing else (no tests, bench, local AWS, tools or docs). The
packages go under ``build/``, the module's default ``package_dir``, so the
unpacked archive plans as it is, with no Python. The archive is byte-identical
across builds (same as the packages: sorted entries, fixed timestamps and
permissions). A tree with uncommitted changes is refused unless
``--allow-dirty``, which stamps the manifest ``"dirty": true``.
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
TASK_ROOT = "/var/task"  # where Lambda unpacks a function
LAYER_ROOT = "/opt"  # where Lambda unpacks a layer
# Values the Python code fixes that the Terraform must match (IAM scopes), copied into
# manifest.json "constants" so they have one source: key -> (module under lambda_src, name).
CONSTANTS = {
    "payload_key_prefix": ("cnm_ingest/dlq.py", "PAYLOAD_KEY_PREFIX"),
    "response_key_prefix": ("cnm_ingest/dlq.py", "RESPONSE_KEY_PREFIX"),
    "workflow_payload_key_prefix": ("cnm_ingest/workflow/payload.py", "KEY_PREFIX"),
    "staging_temp_key_prefix": ("cnm_ingest/transfer/provider_access.py", "TEMP_AREA"),
}


# The release archive: what a module user needs, from the files git tracks (RELEASE_PATHS), plus the packages.
RELEASE_PATHS = ("*.tf", "VERSION", "modules", "README.md", "LICENSE", "CHANGELOG.md")
RELEASE_PACKAGE_DIR = "build"  # the module's default package_dir (packages.tf)
RELEASE_NAME = "cnm-ingest"


class BuildError(RuntimeError):
    pass


def version() -> str:
    """The module's version: the file VERSION (no leading v), checked to be a semantic version."""
    text = (ROOT / "VERSION").read_text().strip()
    core = text.split("+")[0].split("-")[0].split(".")
    if len(core) != 3 or not all(part.isdigit() for part in core):
        raise BuildError(f"VERSION holds {text!r}, not a semantic version (MAJOR.MINOR.PATCH)")
    return text


def _git(root: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, check=False)


def git_state(root: Path = ROOT) -> dict:
    """{"commit": HEAD's hash or None outside git, "dirty": whether tracked or untracked files changed}."""
    head = _git(root, "rev-parse", "HEAD")
    if head.returncode:
        return {"commit": None, "dirty": False}
    status = _git(root, "status", "--porcelain", "--untracked-files=normal")
    if status.returncode:
        raise BuildError(f"git status failed in {root}: {status.stderr.strip()}")
    return {"commit": head.stdout.strip(), "dirty": bool(status.stdout.strip())}


def _files(base: Path, bytecode: bool = False) -> list[tuple[Path, str]]:
    """Every file under ``base`` worth packaging, as (path, archive name) sorted by name.

    Bytecode is left out unless ``bytecode`` (then it is what :func:`compile_tree` wrote).
    """
    out = []
    for path in base.rglob("*"):
        rel = path.relative_to(base)
        if path.is_dir():
            continue
        if not bytecode and (SKIP_PARTS.intersection(rel.parts) or path.suffix in SKIP_SUFFIXES):
            continue
        out.append((path, rel.as_posix()))
    return sorted(out, key=lambda e: e[1])


def compile_tree(tree: Path, runs_from: str, python: str) -> None:
    """Write deterministic bytecode for ``python`` beside every module under ``tree``.

    ``runs_from`` is where ``tree`` is on Lambda: it replaces ``tree`` in the
    file names recorded in the bytecode (tracebacks, ``__file__`` of frames).
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env.update(PYTHONHASHSEED="0", SOURCE_DATE_EPOCH="315532800")
    cmd = [
        python,
        "-m",
        "compileall",
        "-q",
        "-j",
        "1",
        "--invalidation-mode",
        "checked-hash",
        "-s",
        str(tree),
        "-p",
        runs_from,
        str(tree),
    ]
    result = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if result.returncode:
        raise BuildError(f"compiling {tree} with {python} failed:\n{result.stdout}{result.stderr}")


def bytecode_python(required: bool = True) -> str | None:
    python = runtime_python()
    if python is None and required:
        raise BuildError(
            f"no {RUNTIME} interpreter found to write the Lambda bytecode: set LAMBDA_PYTHON to one, "
            "or build with --no-bytecode"
        )
    return python


def python_version(python: str) -> str:
    return subprocess.run(
        [python, "-c", "import platform; print(platform.python_version())"], check=True, capture_output=True, text=True
    ).stdout.strip()


def write_zip(dest: Path, entries: list[tuple[Path, str]]) -> None:
    """Write a deterministic zip of ``entries`` (source path, archive name)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f"{dest.name}.{os.getpid()}.tmp")  # builds in two processes at once never share one
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


def runtime_python() -> str | None:
    """A Python interpreter of the Lambda runtime's version (``RUNTIME``), or None.

    ``LAMBDA_PYTHON`` names one; otherwise ``python3.12`` on PATH, then pyenv's
    and the usual system locations are tried, each checked by running it.
    """
    want = RUNTIME.removeprefix("python")
    pyenv_root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    candidates = [
        os.environ.get("LAMBDA_PYTHON"),
        shutil.which(RUNTIME),
        *sorted(map(str, pyenv_root.glob(f"versions/{want}.*/bin/{RUNTIME}")), reverse=True),
        f"/usr/bin/{RUNTIME}",
        f"/usr/local/bin/{RUNTIME}",
    ]
    for cand in filter(None, candidates):
        try:
            got = subprocess.run(
                [cand, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                capture_output=True,
                text=True,
                timeout=30,
                check=False,
            )
        except OSError:
            continue
        if got.returncode == 0 and got.stdout.strip() == want:
            return cand
    return None


def handler_names() -> list[str]:
    return sorted(p.stem for p in (SRC / "handlers").glob("*.py") if p.stem != "__init__")


def build_functions(out: Path, python: str | None) -> dict:
    """One zip per handler: ``<name>.py`` and the shared package, with bytecode when ``python`` is given."""
    functions = {}
    with tempfile.TemporaryDirectory() as tmp:
        task = Path(tmp) / "task"
        for src, name in _files(SRC / SHARED_PACKAGE):
            (task / SHARED_PACKAGE / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, task / SHARED_PACKAGE / name)
        for name in handler_names():
            shutil.copyfile(SRC / "handlers" / f"{name}.py", task / f"{name}.py")
        if python:
            compile_tree(task, TASK_ROOT, python)
        shared = [(p, n) for p, n in _files(task, bytecode=True) if n.startswith(f"{SHARED_PACKAGE}/")]
        own = {
            n: [(p, a) for p, a in _files(task, bytecode=True) if a == f"{n}.py" or a.startswith(f"__pycache__/{n}.")]
            for n in handler_names()
        }
        for name in handler_names():
            dest = out / "functions" / f"{name}.zip"
            write_zip(dest, [*own[name], *shared])
            functions[name] = {**describe(dest, out), "handler": f"{name}.handler"}
    return functions


def runtime_requirements() -> list[str]:
    with (ROOT / "pyproject.toml").open("rb") as fh:
        return list(tomllib.load(fh)["project"]["dependencies"])


def build_layer(out: Path, python: str | None) -> dict:
    """pip-install the runtime dependencies for the Lambda platform and zip them (with bytecode)."""
    reqs = runtime_requirements()
    with tempfile.TemporaryDirectory() as tmp:
        target = Path(tmp) / "python"
        cmd = [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--no-compile",
            "--no-deps",
            "--only-binary=:all:",
            "--platform",
            PLATFORM,
            "--implementation",
            "cp",
            "--python-version",
            RUNTIME.removeprefix("python"),
            "--target",
            str(target),
            *reqs,
        ]
        env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "SOURCE_DATE_EPOCH": "315532800"}
        subprocess.run(cmd, check=True, env=env)
        # pip writes its own record of the install time-free metadata only; scripts
        # in bin/ are of no use in a layer.
        shutil.rmtree(target / "bin", ignore_errors=True)
        if python:
            compile_tree(target, f"{LAYER_ROOT}/python", python)
        dest = out / "layers" / "deps.zip"
        write_zip(dest, [(p, f"python/{name}") for p, name in _files(target, bytecode=True)])
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


def build(out: Path, with_layer: bool = True, bytecode: bool = True) -> dict:
    python = bytecode_python() if bytecode else None
    out.mkdir(parents=True, exist_ok=True)
    manifest: dict = {
        "version": version(),
        **git_state(),
        "runtime": RUNTIME,
        "constants": constants(),
        "bytecode": {"python": python_version(python), "invalidation_mode": "checked-hash"} if python else None,
        "functions": build_functions(out, python),
        "layers": {},
    }
    if with_layer:
        manifest["layers"]["deps"] = build_layer(out, python)
    tmp = out / f"manifest.json.{os.getpid()}.tmp"  # a reader in another process sees the old or the new one
    tmp.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    tmp.replace(out / "manifest.json")
    return manifest


def release_files(root: Path = ROOT) -> list[tuple[Path, str]]:
    """The module's files that go into the release: those git tracks under RELEASE_PATHS, sorted."""
    listed = _git(root, "ls-files", "-z", "--", *RELEASE_PATHS)
    if listed.returncode:
        raise BuildError(f"a release is built from a git checkout: git ls-files failed in {root}: {listed.stderr}")
    names = sorted(n for n in listed.stdout.split("\0") if (n and "/" not in n) or n.startswith("modules/"))
    if "VERSION" not in names:
        raise BuildError("VERSION is not tracked by git: the module reads it (git add VERSION)")
    # a tracked file deleted in the working tree is not released (the tree is dirty then anyway)
    return [(root / n, n) for n in names if (root / n).is_file()]


def release(dist: Path, allow_dirty: bool = False, bytecode: bool = True) -> Path:
    """Build ``dist/cnm-ingest-<version>.zip``: the module and freshly built packages (see the module doc)."""
    state = git_state()
    if state["commit"] is None:
        raise BuildError("a release is built from a git checkout (its manifest names the commit)")
    if state["dirty"] and not allow_dirty:
        raise BuildError(
            "the tree has uncommitted changes (git status): commit them, or pass --allow-dirty "
            'to build a release whose manifest says "dirty": true'
        )
    entries = release_files()
    with tempfile.TemporaryDirectory() as tmp:
        packages = Path(tmp) / RELEASE_PACKAGE_DIR
        build(packages, bytecode=bytecode)
        entries += [(p, f"{RELEASE_PACKAGE_DIR}/{name}") for p, name in _files(packages)]
        dest = dist / f"{RELEASE_NAME}-{version()}.zip"
        write_zip(dest, entries)
    return dest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "command",
        nargs="?",
        choices=["packages", "release"],
        default="packages",
        help="packages (default): the Lambda packages only; release: dist/cnm-ingest-<version>.zip",
    )
    parser.add_argument(
        "--out", type=Path, default=None, help="output directory (default: build/, for a release dist/)"
    )
    parser.add_argument(
        "--allow-dirty",
        action="store_true",
        help="release: build from a tree with uncommitted changes (the manifest says dirty)",
    )
    parser.add_argument("--no-layer", action="store_true", help="skip the dependency layer (no pip needed)")
    parser.add_argument(
        "--no-bytecode",
        action="store_true",
        help=f"ship sources only (when no {RUNTIME} interpreter is at hand; slower cold starts)",
    )
    args = parser.parse_args(argv)
    if args.command == "release":
        if args.no_layer:
            parser.error("a release always carries the dependency layer (--no-layer is for packages)")
        try:
            dest = release((args.out or ROOT / "dist").resolve(), args.allow_dirty, bytecode=not args.no_bytecode)
        except BuildError as exc:
            print(f"build.py: {exc}", file=sys.stderr)
            return 2
        digest = hashlib.sha256(dest.read_bytes()).hexdigest()
        print(f"release  {dest}  {dest.stat().st_size} bytes  sha256 {digest}")
        return 0
    out = args.out or ROOT / "build"
    try:
        manifest = build(out.resolve(), with_layer=not args.no_layer, bytecode=not args.no_bytecode)
    except BuildError as exc:
        print(f"build.py: {exc}", file=sys.stderr)
        return 2
    for kind in ("functions", "layers"):
        for name, item in manifest[kind].items():
            print(f"{kind[:-1]:8} {name:20} {item['size']:>9} bytes  sha256 {item['sha256'][:16]}  {item['filename']}")
    print(f"manifest {out / 'manifest.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
