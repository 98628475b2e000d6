"""moto on loopback, patched (localaws.patches), standing in for AWS.

    python -m localaws.server --port 4566          # serve until interrupted

In tests: ``with LocalAWS() as aws: aws.endpoint``. The server runs in a thread of
the calling process, so a runtime in the same process (localaws.runtime) shares
moto's backends: Step Functions executions run in moto's interpreter and their
Lambda tasks go to the runtime's invoker (``set_lambda_invoker``).
"""

from __future__ import annotations

import argparse
import logging
import os
import threading
from collections.abc import Callable
from typing import Any

from . import patches

REGION = "us-west-2"


def make_app() -> Any:
    """moto's WSGI application, behind the listed patches."""
    patches.apply()
    _count_kinesis_writes()
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

    return patches.RpcV2CborMiddleware(DomainDispatcherApplication(create_backend_app))


_writes_lock = threading.Lock()
_kinesis_writes = 0
_counting = False
_READS = ("Describe", "List", "Get")


def kinesis_writes() -> int | None:
    """How many Kinesis actions that change a stream (all but Describe*, List*, Get*) this process's local AWS
    has answered, failed ones included. A runtime's poller that found its shard empty need not read it again
    until this changes (localaws.runtime.KinesisPoller): records reach a stream only through these actions.
    None when no local AWS was made in this process (nothing is counted: a poller then reads every round)."""
    return _kinesis_writes if _counting else None


def sqs_has_visible(queue_arn: str) -> bool:
    """Whether the queue holds a message a ReceiveMessage would return now (visible, not delayed), read from this
    process's local AWS without a request; True when there is no such queue (the request then says what is wrong).
    A runtime's SQS poller asks this before each receive (localaws.runtime.SqsPoller)."""
    from moto.sqs.models import sqs_backends

    _, _, _, region, account, name = queue_arn.split(":", 5)
    queue = sqs_backends[account][region].queues.get(name)
    return queue is None or bool(queue.messages)


def _count_kinesis_writes() -> None:
    """Count every Kinesis write, once it has been answered (its records stored), in ``kinesis_writes()``."""
    global _counting
    from moto.core.responses import BaseResponse
    from moto.kinesis.responses import KinesisResponse

    with _writes_lock:
        if _counting:
            return
        _counting = True

    def call_action(self: Any) -> Any:
        global _kinesis_writes
        try:
            # BaseResponse's at call time: a hook installed on it later (localaws.faults) still runs
            return BaseResponse.call_action(self)
        finally:
            if not self._get_action().startswith(_READS):
                with _writes_lock:
                    _kinesis_writes += 1

    Kinesis: Any = KinesisResponse
    Kinesis.call_action = call_action


def enable_state_machine_execution() -> None:
    """Run Step Functions executions in moto's ASL interpreter (as SFN_EXECUTION does)."""
    from moto.core.config import default_user_config

    default_user_config.setdefault("stepfunctions", {})["execute_state_machine"] = True


LambdaInvoker = Callable[[dict, str, Any], dict]


def set_lambda_invoker(invoker: LambdaInvoker | None) -> None:
    """Send the interpreter's Lambda Task invocations to ``invoker`` (None: moto's own).

    moto 5.2.5's interpreter invokes a Task whose Resource is a Lambda ARN through
    ``lambda_eval_utils._invoke_lambda_function(parameters, region, credentials)``;
    moto would run the function in Docker, which this machine does not have.
    """
    from moto.stepfunctions.parser.asl.component.state.exec.state_task import lambda_eval_utils as _utils

    lambda_eval_utils: Any = _utils

    if not hasattr(lambda_eval_utils, "_moto_invoke_lambda_function"):
        lambda_eval_utils._moto_invoke_lambda_function = lambda_eval_utils._invoke_lambda_function
    lambda_eval_utils._invoke_lambda_function = invoker or lambda_eval_utils._moto_invoke_lambda_function


def set_moto_event_source_push(enabled: bool) -> None:
    """moto pushes every Kinesis record and SQS message to the mapped function when it is put
    (running the function in Docker); while the runtime's pollers deliver them, as AWS does,
    that push is off."""
    from moto.awslambda import models as lambda_models
    from moto.sqs import models as sqs_models

    LambdaBackend: Any = lambda_models.LambdaBackend
    Queue: Any = sqs_models.Queue

    if not hasattr(LambdaBackend, "_moto_send_kinesis_message"):
        LambdaBackend._moto_send_kinesis_message = LambdaBackend.send_kinesis_message
        Queue._moto_add_message = Queue.add_message
    LambdaBackend.send_kinesis_message = (
        LambdaBackend._moto_send_kinesis_message if enabled else lambda self, **kwargs: None
    )

    _hide_queue_mappings(Queue)

    def add_message_unmapped(self: Any, message: Any) -> None:
        # moto's add_message, with the queue's mappings hidden from this thread for the call (nothing
        # shared is changed: concurrent sends to the queue cannot see each other's empty mappings, nor
        # restore them out of order; a swap of the instance attribute raced, and one send reached moto's
        # Docker-based SQS -> Lambda push)
        _unmapped.depth = getattr(_unmapped, "depth", 0) + 1
        try:
            Queue._moto_add_message(self, message)
        finally:
            _unmapped.depth -= 1

    Queue.add_message = Queue._moto_add_message if enabled else add_message_unmapped


_unmapped = threading.local()  # depth > 0: this thread is inside add_message_unmapped


def _hide_queue_mappings(Queue: Any) -> None:
    """``Queue.lambda_event_source_mappings`` as a property over the instance's own dict entry (so
    queues created before, and snapshots, keep theirs) that reads as empty in a thread inside
    ``add_message_unmapped``."""
    if isinstance(Queue.__dict__.get("lambda_event_source_mappings"), property):
        return

    def get(self: Any) -> dict[str, Any]:
        if getattr(_unmapped, "depth", 0):
            return {}
        return self.__dict__.setdefault("lambda_event_source_mappings", {})

    def set_(self: Any, value: dict[str, Any]) -> None:
        self.__dict__["lambda_event_source_mappings"] = value

    Queue.lambda_event_source_mappings = property(get, set_)


SnsLambdaDeliverer = Callable[[Any, str, str, "str | None", "dict | None"], None]


def set_sns_lambda_deliverer(deliverer: SnsLambdaDeliverer | None) -> None:
    """Hand SNS deliveries to Lambda subscriptions to ``deliverer(subscription, message, message_id,
    subject, message_attributes)`` (None: moto's own, which runs the function in Docker with a
    fixed sample event). The subscription's filter policy and message structure apply first."""
    from moto.sns import models as sns_models

    Subscription: Any = sns_models.Subscription

    if not hasattr(Subscription, "_moto_publish"):
        Subscription._moto_publish = Subscription.publish

    def publish(
        self: Any,
        message: str,
        message_id: str,
        subject: str | None = None,
        message_attributes: dict | None = None,
        group_id: str | None = None,
        deduplication_id: str | None = None,
        message_structure: str | None = None,
    ) -> None:
        if self.protocol != "lambda" or deliverer is None:
            return Subscription._moto_publish(
                self, message, message_id, subject, message_attributes, group_id, deduplication_id, message_structure
            )
        if self._filter_policy_matcher is not None and not self._filter_policy_matcher.matches(
            message_attributes, message
        ):
            return None
        if message_structure == "json":
            message = self._parse_message_structure(message, self.protocol)
        deliverer(self, message, message_id, subject, message_attributes)
        return None

    Subscription.publish = publish


class LocalAWS:
    """The patched moto server in a thread on 127.0.0.1 (port 0: any free port)."""

    def __init__(self, port: int = 0, host: str = "127.0.0.1"):
        self.host, self.port = host, port
        self._server: Any = None
        self._thread: threading.Thread | None = None

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> LocalAWS:
        from moto.moto_server.werkzeug_app import MotoRequestHandler
        from werkzeug.serving import make_server

        for key, value in {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": REGION,
        }.items():
            os.environ.setdefault(key, value)
        enable_state_machine_execution()
        log_file = os.environ.get("LOCALAWS_ERROR_LOG")
        if log_file:  # requests moto failed on (500), with their tracebacks
            handler = logging.FileHandler(log_file)
            handler.setLevel(logging.ERROR)
            logging.getLogger("werkzeug").addHandler(handler)
        self._server = make_server(self.host, self.port, make_app(), threaded=True, request_handler=MotoRequestHandler)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, name="localaws", daemon=True)
        self._thread.start()
        return self

    def reset(self) -> None:
        """Drop every resource in the local AWS at once (moto's reset API), as when throwing it away."""
        import urllib.request

        urllib.request.urlopen(urllib.request.Request(f"{self.endpoint}/moto-api/reset", method="POST"), timeout=60)

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            assert self._thread is not None
            self._thread.join()
            self._server = None

    def __enter__(self) -> LocalAWS:  # noqa: PYI034 - start() returns the server itself
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=4566)
    args = parser.parse_args(argv)
    server = LocalAWS(args.port, args.host).start()
    print(f"local AWS (moto, patches: {', '.join(patches.PATCHES)}) at {server.endpoint}", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
