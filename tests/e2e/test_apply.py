"""What `terraform apply` of each example created, read back through the AWS APIs.

The expectations are the examples' settings (examples/*/main.tf) and the module
defaults, written out here, and the package manifest build.py writes; a mismatch is
a drift between what Terraform configures and what is deployed.
"""

from __future__ import annotations

import json

import pytest

from localaws.deployed import Stack

from .conftest import ROOT

pytestmark = [pytest.mark.terraform, pytest.mark.provider]

MANIFEST = ROOT / "build" / "manifest.json"

# role -> (handler module in build/manifest.json)
ROLES = {
    "message_consumer": "message_consumer",
    "fallback_consumer": "fallback_consumer",
    "hydrate": "hydrate",
    "inbound_logger": "logger",
    "outbound_logger": "logger",
    "start_status": "start_status",
    "translate_message": "translate_message",
    "sync_granule": "sync_granule",
    "cnm_response": "cnm_response",
    "stop_status": "stop_status",
    "recorder": "recorder",
    "reconcile": "reconcile",
}

# the consumer's event source mapping, as each example configures it
CONSUMER_ESM = {
    "complete": {
        "batch_size": 50,
        "window_seconds": 5,
        "starting_position": "TRIM_HORIZON",
        "bisect": True,
        "maximum_retry_attempts": 5,
        "maximum_record_age_seconds": 7200,
        "parallelization_factor": 2,
        "response_types": ["ReportBatchItemFailures"],
    },
    "minimal": {
        "batch_size": 100,
        "window_seconds": 0,
        "starting_position": "TRIM_HORIZON",
        "bisect": True,
        "maximum_retry_attempts": 3,
        "maximum_record_age_seconds": 3600,
        "parallelization_factor": 1,
        "response_types": ["ReportBatchItemFailures"],
    },
}


@pytest.fixture(params=["minimal", "complete"])
def stack(request) -> Stack:
    return request.getfixturevalue(f"{request.param}_stack")


def _example(stack: Stack) -> str:
    return stack.prefix.removeprefix("cnm-")


def test_every_function_runs_its_package_with_the_layer(stack):
    manifest = json.loads(MANIFEST.read_text())
    assert set(stack.functions) == {f"{stack.prefix}-{r.replace('_', '-')}" for r in ROLES}
    layer_arns = set()
    for role, module in ROLES.items():
        fn = stack.function(role)
        assert fn.handler == manifest["functions"][module]["handler"], role
        assert fn.runtime == manifest["runtime"]
        assert len(fn.layers) == 1 and f":layer:{stack.prefix}-deps:" in fn.layers[0], role
        layer_arns.update(fn.layers)
        assert fn.environment["POWERTOOLS_SERVICE_NAME"] in (role, module), role
    assert len(layer_arns) == 1  # one layer version, shared


def test_function_settings(stack):
    consumer = stack.function("message_consumer")
    if _example(stack) == "complete":
        assert (consumer.timeout, consumer.memory) == (600, 1024)
        assert stack.function("fallback_consumer").environment["POWERTOOLS_LOG_LEVEL"] == "DEBUG"
    else:
        assert (consumer.timeout, consumer.memory) == (300, 512)
    # the loggers' built-in 60 s / 256 MB; complete's lambda_function_settings.defaults (512 MB) overrides the memory
    logger_memory = 512 if _example(stack) == "complete" else 256
    for role in ("inbound_logger", "outbound_logger"):
        assert (stack.function(role).timeout, stack.function(role).memory) == (60, logger_memory)
    if _example(stack) == "complete":
        assert stack.function("sync_granule").memory == 2048


def test_function_environment_points_at_deployed_resources(stack):
    env = stack.function("message_consumer").environment
    assert set(stack.tables) >= {env["RULES_TABLE"], env["COLLECTIONS_TABLE"], env["PROVIDERS_TABLE"]}
    assert env["FALLBACK_TOPIC_ARN"] in stack.topics
    assert env["RESPONSE_STREAM_ARN"] in stack.streams.values()
    assert env["STACK"] == stack.prefix
    # each function gets its own environment, not a union: the loggers know no tables
    assert "RULES_TABLE" not in stack.function("inbound_logger").environment
    assert "FALLBACK_TOPIC_ARN" not in stack.function("fallback_consumer").environment


def test_consumer_event_source_mapping(stack):
    consumer = stack.function("message_consumer")
    (esm,) = [m for m in stack.mappings if m.function_arn == consumer.arn]
    for key, value in CONSUMER_ESM[_example(stack)].items():
        assert getattr(esm, key) == value, key
    failed_batch = [t for t in stack.topics if t.endswith(f":{stack.prefix}-failed-batch")]
    assert esm.on_failure_arn == failed_batch[0]
    stream = stack.streams[f"{stack.prefix}-notifications"]
    if _example(stack) == "complete":  # enhanced fan-out: the mapping reads through a stream consumer
        assert esm.source_arn.startswith(stream + "/consumer/")
    else:
        assert esm.source_arn == stream


def test_logger_mappings_read_both_streams(stack):
    sources = {stack.function(r).arn: r for r in ("inbound_logger", "outbound_logger")}
    mapped = {sources[m.function_arn]: m.source_arn for m in stack.mappings if m.function_arn in sources}
    assert mapped == {
        "inbound_logger": stack.streams[f"{stack.prefix}-notifications"],
        "outbound_logger": stack.streams[f"{stack.prefix}-responses"],
    }


def test_state_machine_definition_invokes_the_deployed_functions(stack):
    (name,) = stack.state_machines
    definition = stack.definition(name)
    tasks = {state: body for state, body in definition["States"].items() if body["Type"] == "Task"}
    arns = {f.arn for f in stack.functions.values()}
    for state, body in tasks.items():
        target = body.get("Parameters", {}).get("FunctionName", body.get("Resource"))
        assert target in arns or target.rsplit(":", 1)[0] in arns, (state, target)
    sync_retry = definition["States"]["SyncGranule"]["Retry"][0]
    if _example(stack) == "complete":
        assert definition["States"]["SyncGranule"]["Next"] == "SyncGranuleContinues"
        assert definition["States"]["SyncGranuleContinues"]["Default"] == "DaacPostSync"
        assert definition["States"]["DaacPostSync"]["Type"] == "Pass"
        assert (sync_retry["IntervalSeconds"], sync_retry["MaxAttempts"]) == (15, 4)
        assert stack.state_machines[name]["loggingConfiguration"]["level"] == "ALL"
        assert stack.state_machines[name]["tracingConfiguration"]["enabled"] is True
    else:
        assert definition["States"]["SyncGranule"]["Next"] == "SyncGranuleContinues"
        assert definition["States"]["SyncGranuleContinues"]["Default"] == "CnmResponse"


def test_dlq_and_redrive_policies(stack):
    (dlq_url,) = [u for u in stack.queues if u.endswith(f"/{stack.prefix}-kinesisFailure")]
    attrs = stack.queues[dlq_url]
    assert json.loads(attrs["RedriveAllowPolicy"]) == {"redrivePermission": "allowAll"}
    policy = json.loads(attrs["Policy"])
    sids = {s["Sid"]: s for s in policy["Statement"]}
    assert {"DenyInsecureTransport", "PipelineFunctionsSend", "SnsRedriveUndeliverable"} <= set(sids)
    allowed_topics = sids["SnsRedriveUndeliverable"]["Condition"]["ArnEquals"]["aws:SourceArn"]
    allowed_topics = [allowed_topics] if isinstance(allowed_topics, str) else allowed_topics
    # every SNS -> Lambda subscription of the pipeline redrives undeliverable messages to the DLQ,
    # and the DLQ lets exactly those topics send
    lambda_subs = [s for s in stack.subscriptions if s.protocol == "lambda"]
    assert {s.topic_arn for s in lambda_subs} == {t for t in stack.topics if t.endswith(("-fallback", "-failed-batch"))}
    for sub in lambda_subs:
        assert json.loads(sub.attributes["RedrivePolicy"])["deadLetterTargetArn"] == attrs["QueueArn"]
        assert sub.topic_arn in allowed_topics
    fallback = stack.function("fallback_consumer").async_config
    assert fallback["MaximumRetryAttempts"] == (
        2 if _example(stack) == "complete" else fallback["MaximumRetryAttempts"]
    )
    assert fallback["DestinationConfig"]["OnFailure"]["Destination"] == attrs["QueueArn"]


def test_tables_key_schemas_and_seeded_items(stack, client):
    keys = {
        name.removeprefix(f"{stack.prefix}-"): {k["AttributeName"]: k["KeyType"] for k in t["KeySchema"]}
        for name, t in stack.tables.items()
    }
    assert keys["rules"] == {"name": "HASH"}
    assert keys["collections"] == {"name": "HASH", "version": "RANGE"}
    assert keys["providers"] == {"id": "HASH"}
    assert keys["executions"] == {"pk": "HASH", "sk": "RANGE"}  # the one status store (issue 21)
    assert "workflow-status" not in keys
    ddb = client("dynamodb")
    items = {
        kind: ddb.scan(TableName=f"{stack.prefix}-{kind}")["Items"] for kind in ("rules", "collections", "providers")
    }
    if _example(stack) == "minimal":
        assert items == {"rules": [], "collections": [], "providers": []}
        return
    rules = {i["name"]["S"]: i for i in items["rules"]}
    assert set(rules) == {"swot_l2_lr_ssh", "cnm_samples", "sentinel6_nrt_any_version"}
    machine = next(iter(stack.state_machines.values()))
    assert rules["swot_l2_lr_ssh"]["workflow_arn"]["S"] == machine["stateMachineArn"]
    assert rules["swot_l2_lr_ssh"]["workflow_name"]["S"] == machine["name"]
    assert rules["sentinel6_nrt_any_version"]["state"]["S"] == "DISABLED"
    collections = {(i["name"]["S"], i["version"]["S"]) for i in items["collections"]}
    assert collections == {
        ("SWOT_L2_LR_SSH", "2.0"),
        ("SWOT_Prod_l2:1", "1"),
        ("JASON_CS_S6A_L2_ALT_LR_STD_OST_NRT_F", "F"),
    }
    assert {i["id"]["S"] for i in items["providers"]} == {"PODAAC_SWOT", "PODAAC_SENTINEL6"}


def test_alarms(stack):
    if _example(stack) == "minimal":
        return  # minimal keeps the default (create_alarms = true) without a topic of its own
    alarms = {a["AlarmName"]: a for a in stack.alarms}
    assert f"{stack.prefix}-consumer-iterator-age" in alarms or any("iterator" in n for n in alarms)
    topic = [t for t in stack.topics if t.endswith(f":{stack.prefix}-alarms")]
    assert topic and all(a["AlarmActions"] == topic for a in alarms.values())
    # the pipeline's alarms look at minutes; reconcile's (issue 23) at one data point per scheduled run
    pipeline_alarms = [a for n, a in alarms.items() if "-reconcile-" not in n or n.endswith("-reconcile-errors")]
    assert pipeline_alarms and all(a["Period"] == 60 for a in pipeline_alarms)
