"""The Lambda runtime loop of one function, in a process of its own (see localaws.runtime).

    python -I bootstrap.py CODE_DIR HANDLER [LAYER_DIR ...] [--runtime SITE]

Like the Lambda Python runtime: the function's code directory, then each layer's
``python/`` directory, come first on sys.path, then the runtime's own libraries (SITE:
boto3); the handler module is imported once
(an import error is reported to every invocation, as Lambda reports an init error);
the environment is exactly what the parent gives (the function's variables plus the
ones Lambda sets). Requests and answers are JSON lines on stdin / the original
stdout; the function's own prints and logs go to stderr (its log).
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import time
import traceback
from pathlib import Path

code_dir, handler_name, *layer_dirs = sys.argv[1:]
runtime_site: list[str] = []
if "--runtime" in layer_dirs:
    at = layer_dirs.index("--runtime")
    layer_dirs, runtime_site = layer_dirs[:at], layer_dirs[at + 1 : at + 2]
sys.path[:0] = [code_dir, *(str(Path(d) / "python") for d in layer_dirs), *runtime_site]
os.chdir(code_dir)
protocol = os.fdopen(os.dup(1), "w", encoding="utf-8")
os.dup2(2, 1)
sys.stdout = sys.stderr


def error(exc: BaseException, error_type: str | None = None) -> dict:
    return {
        "errorType": error_type or type(exc).__name__,
        "errorMessage": str(exc),
        "stackTrace": traceback.format_tb(exc.__traceback__),
    }


class Context:
    """The Lambda context object."""

    def __init__(self, request: dict):
        self.function_name = os.environ["AWS_LAMBDA_FUNCTION_NAME"]
        self.function_version = "$LATEST"
        self.invoked_function_arn = request["function_arn"]
        self.memory_limit_in_mb = int(os.environ["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"])
        self.aws_request_id = request["request_id"]
        self.log_group_name = os.environ["AWS_LAMBDA_LOG_GROUP_NAME"]
        self.log_stream_name = "localaws"
        self._deadline = request["deadline"]

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.time()) * 1000))


init_error = None
try:
    module_name, function_name = handler_name.rsplit(".", 1)
    handler = getattr(importlib.import_module(module_name), function_name)
except Exception as exc:  # what Lambda reports for a failed init
    init_error = error(exc)

for line in sys.stdin:
    request = json.loads(line)
    if init_error is not None:
        answer = {"error": init_error}
    else:
        try:
            result = handler(request["event"], Context(request))
        except Exception as exc:
            answer = {"error": error(exc)}
        else:
            try:
                answer = {"result": json.loads(json.dumps(result))}
            except (TypeError, ValueError) as exc:
                answer = {"error": error(exc, "Runtime.MarshalError")}
    sys.stderr.flush()
    protocol.write(json.dumps(answer) + "\n")
    protocol.flush()
