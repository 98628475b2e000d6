"""A layer built for Lambda's Python runs here: its compiled modules get their local build beside them."""

from __future__ import annotations

import importlib.machinery
import subprocess
import sys

from localaws.runtime import _local_extensions


def test_a_layer_built_for_another_python_imports_here(tmp_path):
    python = tmp_path / "layer" / "python"
    (python / "orjson").mkdir(parents=True)
    (python / "orjson" / "__init__.py").write_text("from .orjson import *\nfrom .orjson import __version__\n")
    (python / "orjson" / "orjson.cpython-399-x86_64-linux-gnu.so").write_bytes(b"not for this interpreter")
    (python / "nothing_like_it.cpython-399-x86_64-linux-gnu.so").write_bytes(b"x")  # no local build: left alone
    added = _local_extensions(tmp_path / "layer")
    suffix = importlib.machinery.EXTENSION_SUFFIXES[0]
    assert [p.name for p in added] == [f"orjson{suffix}"]
    assert (python / "orjson" / "orjson.cpython-399-x86_64-linux-gnu.so").read_bytes() == b"not for this interpreter"
    probe = f"import sys; sys.path.insert(0, {str(python)!r}); import orjson; print(orjson.__file__, orjson.dumps([1]))"
    out = subprocess.run([sys.executable, "-I", "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.startswith(str(python)) and "b'[1]'" in out
    assert _local_extensions(tmp_path / "layer") == []  # once
