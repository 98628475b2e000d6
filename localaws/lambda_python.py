"""The Python a function runs on locally: the Lambda runtime's version, with the runtime's boto3.

Lambda's Python runtime puts the function's code, then its layers, then the runtime's own
libraries (boto3 and its dependencies) on ``sys.path``. Here the interpreter is the one
``build.runtime_python`` finds for the Lambda runtime's version (``LAMBDA_PYTHON``,
``python3.12`` on PATH, pyenv), so native wheels the build vendors for that version
(orjson, cryptography) load as they do on AWS, and the runtime's libraries are this
environment's boto3 copied and compiled for it. When no such interpreter exists, the local
one is used and said so in ``note``.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import shutil
import subprocess
import sys
from pathlib import Path

import build

RUNTIME_DISTS = ("boto3", "botocore", "s3transfer", "jmespath", "python-dateutil", "six", "urllib3")


def interpreter() -> tuple[str, str]:
    """(path, note): the Lambda runtime's Python, else this one with a note saying so."""
    found = build.runtime_python()
    if found:
        return found, ""
    return sys.executable, f"no {build.RUNTIME} interpreter found: functions run on Python {sys.version.split()[0]}"


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
