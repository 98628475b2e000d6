"""The Python a function runs on locally: the Lambda runtime's version, with the runtime's boto3.

Lambda's Python runtime puts the function's code, then its layers, then the runtime's own
libraries (boto3 and its dependencies) on ``sys.path``. Here the interpreter is one of the
version the function's ``Runtime`` names (``python3.12``: ``LAMBDA_PYTHON``, then that name on
PATH, then pyenv's versions), so native wheels vendored for that version (orjson,
cryptography) load as they do on AWS, and the runtime's libraries are this environment's
boto3 copied and compiled for it. When no such interpreter exists, the local one is used and
said so in ``note``. Only the deployed function's configuration is read: nothing of the
product's build code.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
import shutil
import subprocess
import sys
from pathlib import Path

RUNTIME_DISTS = ("boto3", "botocore", "s3transfer", "jmespath", "python-dateutil", "six", "urllib3")


def _version_of(python: str) -> str | None:
    """``python``'s major.minor version, or None when it does not run."""
    probe = "import sys; print('%d.%d' % sys.version_info[:2])"
    try:
        return subprocess.check_output([python, "-c", probe], text=True, timeout=30, stderr=subprocess.DEVNULL).strip()
    except (OSError, subprocess.SubprocessError):
        return None


def interpreter(runtime: str) -> tuple[str, str]:
    """(path, note): a Python of the version ``runtime`` (a Lambda runtime name such as
    ``python3.12``) names, else this one with a note saying so."""
    version = runtime.removeprefix("python")
    pyenv = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    tried = [os.environ.get("LAMBDA_PYTHON"), shutil.which(runtime)]
    tried += sorted((str(p) for p in pyenv.glob(f"{version}.*/bin/{runtime}")), reverse=True)
    for python in filter(None, tried):
        if _version_of(python) == version:
            return python, ""
    return sys.executable, f"no {runtime} interpreter found: functions run on Python {sys.version.split()[0]}"


def runtime_site(python: str, cache: Path) -> Path:
    """boto3 and its dependencies as the Lambda runtime has them: this environment's copies, compiled for ``python``."""
    versions = "-".join(f"{d}{importlib.metadata.version(d)}" for d in RUNTIME_DISTS)
    tag = subprocess.run(
        [python, "-c", "import sys; print(sys.implementation.cache_tag)"], check=True, capture_output=True, text=True
    ).stdout.strip()
    dest = cache / f"runtime-{tag}-{hashlib.sha256(versions.encode()).hexdigest()[:12]}"
    if (dest / ".done").exists():
        return dest
    shutil.rmtree(dest, ignore_errors=True)
    for dist in RUNTIME_DISTS:
        for f in importlib.metadata.distribution(dist).files or []:
            if f.suffix == ".pyc" or ".dist-info" in str(f) or str(f).startswith(".."):
                continue
            target = dest / f
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(str(f.locate()), target)
    subprocess.run([python, "-m", "compileall", "-q", "-j", "0", str(dest)], check=True)
    (dest / ".done").write_text(versions)
    return dest
