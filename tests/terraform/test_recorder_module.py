"""modules/recorder: EventBridge -> encrypted SQS buffer (own DLQ) -> recorder function -> executions table."""

from __future__ import annotations

import json

from .test_hcl import ROOT, named, only, typed

RECORDER = ROOT / "modules" / "recorder"


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
    assert "aws_sqs_queue.dlq.arn" in queues["buffer"]["redrive_policy"]
    allow = only(typed(RECORDER, "resource", "aws_sqs_queue_redrive_allow_policy"))
    assert "byQueue" in allow["redrive_allow_policy"] and "aws_sqs_queue.buffer.arn" in allow["redrive_allow_policy"]
    esm = only(typed(RECORDER, "resource", "aws_lambda_event_source_mapping"))
    assert esm["function_response_types"] == ["ReportBatchItemFailures"]


def test_table_layout_is_the_one_the_code_uses():
    """The HCL table has the keys and index cnm_ingest.records writes and queries (the applied table is
    checked against the same code in tests/e2e/test_contract.py)."""
    from cnm_ingest import records

    table = only(typed(RECORDER, "resource", "aws_dynamodb_table"))
    assert (table["hash_key"], table["range_key"]) == tuple(records.execution_key("arn:aws:states:x"))
    (gsi,) = table["global_secondary_index"]
    assert gsi["name"] == records.STATUS_INDEX
    assert [(k["attribute_name"], k["key_type"]) for k in gsi["key_schema"]] == [
        ("status_key", "HASH"),
        ("updated_at", "RANGE"),
    ]
    assert "hash_key" not in gsi and "range_key" not in gsi  # deprecated in provider 6.x
    assert table["server_side_encryption"][0]["enabled"] is True


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
