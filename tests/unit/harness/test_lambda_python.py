"""localaws.lambda_python finds the Python a function's ``Runtime`` names, from the function's configuration alone."""

from __future__ import annotations

import sys

from localaws import lambda_python

HERE = f"python{sys.version_info.major}.{sys.version_info.minor}"


def test_lambda_python_names_the_interpreter(monkeypatch, tmp_path):
    monkeypatch.setenv("LAMBDA_PYTHON", sys.executable)
    monkeypatch.setenv("PATH", str(tmp_path))  # nothing on PATH: LAMBDA_PYTHON is the one found
    assert lambda_python.interpreter(HERE) == (sys.executable, "")


def test_an_interpreter_of_another_version_is_not_taken(monkeypatch, tmp_path):
    monkeypatch.setenv("LAMBDA_PYTHON", sys.executable)  # the wrong version for python2.7
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setenv("PYENV_ROOT", str(tmp_path / "no-pyenv"))
    python, note = lambda_python.interpreter("python2.7")
    assert python == sys.executable
    assert note.startswith("no python2.7 interpreter found: functions run on Python ")


def test_missing_or_broken_candidates_are_skipped(monkeypatch, tmp_path):
    broken = tmp_path / HERE
    broken.write_text("#!/bin/sh\nexit 3\n")
    broken.chmod(0o755)
    monkeypatch.setenv("LAMBDA_PYTHON", str(tmp_path / "absent"))
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setenv("PYENV_ROOT", str(tmp_path / "no-pyenv"))
    python, note = lambda_python.interpreter(HERE)
    assert python == sys.executable and note


def test_an_empty_runtime_finds_nothing(monkeypatch, tmp_path):
    monkeypatch.delenv("LAMBDA_PYTHON", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setenv("PYENV_ROOT", str(tmp_path))
    python, note = lambda_python.interpreter("")
    assert python == sys.executable and note.startswith("no  interpreter found")
