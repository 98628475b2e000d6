"""modules/recorder: EventBridge -> encrypted SQS buffer (own DLQ) -> recorder function -> the status store
(modules/executions, one table for the recorder and the workflow's StartStatus/StopStatus)."""

from __future__ import annotations

import json

from .test_hcl import ROOT, named, only, typed

RECORDER = ROOT / "modules" / "recorder"
EXECUTIONS = ROOT / "modules" / "executions"
WORKFLOW = ROOT / "modules" / "workflow"


def test_reuses_lambda_function():
    assert not typed(RECORDER, "resource", "aws_lambda_function")
    assert not typed(RECORDER, "resource", "aws_iam_role")
    assert named(RECORDER, "module")["function"]["source"] == "../lambda_function"


def test_rule_matches_status_changes_of_the_given_state_machines():
    rule = only(typed(RECORDER, "resource", "aws_cloudwatch_event_rule"))
    pattern = rule["event_pattern"]
    assert "aws.states" in pattern and "Step Functions Execution Status Change" in pattern
    assert "var.state_machine_arns" in pattern
    target = only(typed(RECORDER, "resource", "aws_cloudwatch_event_target"))
    assert target["arn"] == "aws_sqs_queue.buffer.arn"
    assert target["dead_letter_config"][0]["arn"] == "aws_sqs_queue.dlq.arn"


def test_buffer_and_dlq_are_encrypted_and_redriven():
    queues = typed(RECORDER, "resource", "aws_sqs_queue")
    assert set(queues) == {"buffer", "dlq"}
    for q in queues.values():
        assert "sqs_managed_sse_enabled" in q and "kms_master_key_id" in q
    assert "redrive_policy" not in queues["buffer"]  # a resource of its own: the queues are destroyed side by side
    redrive = only(typed(RECORDER, "resource", "aws_sqs_queue_redrive_policy"))
    assert redrive["queue_url"] == "aws_sqs_queue.buffer.id" and "aws_sqs_queue.dlq.arn" in redrive["redrive_policy"]
    allow = only(typed(RECORDER, "resource", "aws_sqs_queue_redrive_allow_policy"))
    assert "byQueue" in allow["redrive_allow_policy"] and "aws_sqs_queue.buffer.arn" in allow["redrive_allow_policy"]
    esm = only(typed(RECORDER, "resource", "aws_lambda_event_source_mapping"))
    assert esm["function_response_types"] == ["ReportBatchItemFailures"]


def test_table_layout_is_the_one_the_code_uses():
    """The HCL table has the keys and index cnm_ingest.executions writes and queries (the applied table is
    checked against the same code in tests/e2e/test_contract.py)."""
    from cnm_ingest import executions

    table = only(typed(EXECUTIONS, "resource", "aws_dynamodb_table"))
    assert (table["hash_key"], table["range_key"]) == tuple(executions.execution_key("arn:aws:states:x"))
    (gsi,) = table["global_secondary_index"]
    assert gsi["name"] == executions.STATUS_INDEX
    assert [(k["attribute_name"], k["key_type"]) for k in gsi["key_schema"]] == [
        ("status_key", "HASH"),
        ("updated_at", "RANGE"),
    ]
    assert "hash_key" not in gsi and "range_key" not in gsi  # deprecated in provider 6.x
    assert table["server_side_encryption"][0]["enabled"] is True
    name = table["name"]  # an expression: python-hcl2 gives it with or without its ${ } wrapper
    assert (name[2:-1] if name.startswith("${") else name) == 'coalesce(var.table_name, "${var.prefix}-executions")'


def test_one_status_store_written_by_the_recorder_and_the_workflow():
    """Issue 21: one table; the recorder and the workflow take it as an input (executions -> workflow -> recorder)."""
    assert not typed(RECORDER, "resource", "aws_dynamodb_table")
    assert not typed(WORKFLOW, "resource", "aws_dynamodb_table")
    modules = named(ROOT, "module")
    assert modules["executions"]["source"] == "./modules/executions"
    assert (modules["recorder"]["table_name"], modules["recorder"]["table_arn"]) == (
        "module.executions.table_name",
        "module.executions.table_arn",
    )
    assert (modules["workflow"]["executions_table_name"], modules["workflow"]["executions_table_arn"]) == (
        "module.executions.table_name",
        "module.executions.table_arn",
    )
    assert "module.workflow" not in json.dumps(modules["executions"])  # no cycle: the table needs nothing else
    env = named(WORKFLOW, "locals")["environment"]
    for task in ("start_status", "stop_status", "sync_granule"):
        assert env[task]["EXECUTIONS_TABLE"] == "var.executions_table_name", task
    assert "STATUS_TABLE" not in json.dumps(env)
    docs = typed(WORKFLOW, "data", "aws_iam_policy_document")
    [write] = [s for s in docs["status"]["statement"] if s["sid"] == "WriteStatus"]
    assert write["resources"] == ["var.executions_table_arn"] and write["actions"] == ["dynamodb:UpdateItem"]
    assert write["condition"][0]["values"] == ["EXECUTION#*", "GRANULE#*"]


def test_the_recorder_reads_only_the_payload_buckets_workflow_prefix():
    """Issue 23: an offloaded CNM is read back; the role may read the workflow message's parts and nothing else."""
    doc = typed(RECORDER, "data", "aws_iam_policy_document")["this"]
    by_sid = {s["sid"]: s for s in doc["statement"]}
    assert by_sid["ReadWorkflowPayloads"]["actions"] == ["s3:GetObject"]
    assert by_sid["ReadWorkflowPayloads"]["resources"] == ["var.workflow_payload_objects_arn"]
    s3 = [s for s in doc["statement"] if any(a.startswith("s3:") for a in s["actions"])]
    assert s3 == [by_sid["ReadWorkflowPayloads"]]
    assert by_sid["WriteRecords"]["resources"] == ["var.table_arn"]
    assert by_sid["WriteRecords"]["condition"][0]["values"] == ["EXECUTION#*", "GRANULE#*"]
    call = named(ROOT, "module")["recorder"]
    assert call["workflow_payload_objects_arn"] == "local.workflow_payload_objects_arn"
    assert call["payload_bucket_name"] == "module.dead_letter.payload_bucket_name"
    env = named(RECORDER, "module")["function"]["function"]
    assert "PAYLOAD_BUCKET" in env and "EXECUTIONS_TABLE" in env


def test_root_wires_the_recorder_for_every_state_machine():
    call = named(ROOT, "module")["recorder"]
    assert call["source"] == "./modules/recorder"
    assert call["state_machine_arns"] == "local.state_machine_arns"
    assert call["function"] == "local.functions.recorder"  # the same function object as every function
    outputs = named(ROOT, "output")
    assert {"executions_table_name", "recorder_dlq_url", "prefix"} <= set(outputs)
    json.dumps(outputs["executions_table_name"])


def test_the_recorder_dlq_is_alarmed_through_the_alarm_topic():
    alarm = only(typed(RECORDER, "resource", "aws_cloudwatch_metric_alarm"))
    assert alarm["dimensions"] == {"QueueName": "aws_sqs_queue.dlq.name"}
    assert (alarm["metric_name"], alarm["threshold"], alarm["treat_missing_data"]) == (
        "ApproximateNumberOfMessagesVisible",
        0,
        "notBreaching",
    )
    call = named(ROOT, "module")["recorder"]
    assert call["create_dlq_alarm"] == "var.create_alarms"
    assert "module.alarms[0].topic_arn" in call["alarm_actions"]
