"""The CloudWatch dashboard (dashboard.tf, issue 23), planned for real: its body is valid JSON known at plan
time, with the widgets an operator needs, on the names the stack really has and the metric names the product
really emits (the Powertools metrics of lambda_src, the reconcile metrics of modules/reconcile)."""

from __future__ import annotations

import ast
import json
import re

import pytest

from .test_hcl import named, only, typed
from .tfhelpers import ROOT, check, provider_override, show_json, tf

pytestmark = [pytest.mark.terraform, pytest.mark.provider]

ACCOUNT = "123456789012"
REGION = "us-west-2"
STREAM_B = f"arn:aws:kinesis:{REGION}:{ACCOUNT}:stream/provider-b"
WORKFLOW = f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:daac-workflow"
RULES = f"""[
    {{ name = "on-default", collection = {{ name = "C" }}, provider = "P" }},
    {{ name = "on-b", collection = {{ name = "D" }}, provider = "Q", stream_arn = "{STREAM_B}",
       workflow_arn = "{WORKFLOW}" }},
  ]"""


def _module(name: str, extra: str = "") -> str:
    return f"""
module "{name}" {{
  source = "{ROOT}/"

  prefix              = "{name}"
  staging_bucket_name = "{name}-staging"
  rules               = {RULES}
  {extra}
}}
"""


@pytest.fixture(scope="module")
def dashboards(mirror, packages, moto_server, tmp_path_factory) -> dict[str, dict]:
    """``{module name: the planned aws_cloudwatch_dashboard}`` of one plan holding two configurations."""
    work = tmp_path_factory.mktemp("dashboard")
    (work / "main.tf").write_text(
        f'provider "aws" {{\n  region = "{REGION}"\n}}\n'
        + _module("cnm-dash")
        + _module("cnm-nolog", "create_outbound_logger = false")
    )
    (work / "aws_provider_override.tf").write_text(provider_override(moto_server))
    check(tf(work, "init", "-input=false", "-no-color"))
    check(tf(work, "plan", "-input=false", "-no-color", "-lock=false", "-out=tfplan"))
    plan = show_json(work, "tfplan")
    return {
        rc["address"].split(".")[1]: rc["change"]
        for rc in plan["resource_changes"]
        if rc["type"] == "aws_cloudwatch_dashboard"
    }


def _widgets(change: dict) -> list[dict]:
    assert "dashboard_body" not in change["after_unknown"], "the body must be known at plan time"
    body = json.loads(change["after"]["dashboard_body"])
    assert set(body) == {"widgets"}
    return body["widgets"]


def _by_title(widgets: list[dict]) -> dict[str, dict]:
    return {w["properties"].get("title") or w["properties"].get("markdown", "").splitlines()[0]: w for w in widgets}


def _lines(widget: dict) -> list[tuple]:
    """A metric widget's metric lines as (namespace, metric, dimension, value), options dropped."""
    return [tuple(x for x in line if not isinstance(x, dict)) for line in widget["properties"]["metrics"]]


def emitted_metrics() -> set[str]:
    """Every name a Lambda module that emits Powertools metrics could give a metric: its CamelCase string
    literals and the keywords of its ``Counter(...)`` calls (the consumer counts outcomes, then emits them)."""
    names: set[str] = set()
    for path in (ROOT / "lambda_src").rglob("*.py"):
        text = path.read_text()
        if "add_metric" not in text and "single_metric" not in text:
            continue
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                names |= set(re.findall(r"^[A-Z][A-Za-z]+$", node.value))
            elif isinstance(node, ast.Call) and getattr(node.func, "id", None) == "Counter":
                names |= {k.arg for k in node.keywords if k.arg}
    return names


def test_the_dashboard_has_every_widget_on_the_stacks_names(dashboards):
    change = dashboards["cnm-dash"]
    assert change["actions"] == ["create"] and change["after"]["dashboard_name"] == "cnm-dash-cnm-ingest"
    widgets = _widgets(change)
    titles = _by_title(widgets)
    assert set(titles) == {
        "Records in, per stream",
        "Iterator age, per stream (ms)",
        "Executions started, succeeded, failed",
        "Message consumer: started, already started, parked, retried",
        "DLQ depth (cnm-dash-kinesisFailure)",
        "DLQ oldest message age (s)",
        "Failure answers sent by the consumer",
        "Answers by status and error code (response stream)",
        "Reconciliation: Unanswered, per collection",
        "Reconciliation: Stuck, per collection",
        "Reconciliation: Lost, per collection",
    }
    streams = ["cnm-dash-notifications", "provider-b"]  # the module's stream and the rule's own
    records_in = _lines(titles["Records in, per stream"])
    assert [m for m in records_in if m[0] == "AWS/Kinesis"] == [
        ("AWS/Kinesis", "IncomingRecords", "StreamName", s) for s in streams
    ]
    assert ("cnm-dash", "RecordsIn", "service", "message_consumer") in records_in
    age = _lines(titles["Iterator age, per stream (ms)"])
    assert [m for m in age if m[0] == "AWS/Kinesis"] == [
        ("AWS/Kinesis", "GetRecords.IteratorAgeMilliseconds", "StreamName", s) for s in streams
    ]
    assert ("AWS/Lambda", "IteratorAge", "FunctionName", "cnm-dash-message-consumer") in age

    machines = {f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:cnm-dash-cnm-workflow", WORKFLOW}
    executions = _lines(titles["Executions started, succeeded, failed"])
    assert {(m, d, v) for _, m, d, v in executions} == {
        (m, "StateMachineArn", arn)
        for arn in machines
        for m in (
            "ExecutionsStarted",
            "ExecutionsSucceeded",
            "ExecutionsFailed",
            "ExecutionsTimedOut",
            "ExecutionsAborted",
        )
    }
    assert {ns for ns, *_ in executions} == {"AWS/States"}

    depth = _lines(titles["DLQ depth (cnm-dash-kinesisFailure)"])
    assert depth == [
        ("AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", "cnm-dash-kinesisFailure"),
        ("AWS/SQS", "ApproximateNumberOfMessagesNotVisible", "QueueName", "cnm-dash-kinesisFailure"),
    ]
    assert _lines(titles["DLQ oldest message age (s)"]) == [
        ("AWS/SQS", "ApproximateAgeOfOldestMessage", "QueueName", "cnm-dash-kinesisFailure")
    ]

    answers = titles["Answers by status and error code (response stream)"]
    assert answers["type"] == "log"
    query = answers["properties"]["query"]
    assert query.startswith("SOURCE '/aws/lambda/cnm-dash-outbound-logger' |")
    assert "by payload.response.status as status, payload.response.errorCode as error_code" in query

    for metric in ("Unanswered", "Stuck", "Lost"):
        ((line,),) = titles[f"Reconciliation: {metric}, per collection"]["properties"]["metrics"]
        assert line["expression"] == f'SELECT MAX({metric}) FROM SCHEMA("cnm-dash", collection) GROUP BY collection'

    for w in widgets:  # every widget on the 24-column grid, none overlapping, metric widgets with a region
        assert w["x"] >= 0 and w["x"] + w["width"] <= 24 and w["height"] > 0
        if w["type"] in ("metric", "log"):
            assert w["properties"]["region"] == REGION
    cells = [(w["x"] + i, w["y"] + j) for w in widgets for i in range(w["width"]) for j in range(w["height"])]
    assert len(cells) == len(set(cells)), "widgets overlap"


def test_the_product_metrics_on_the_dashboard_are_the_ones_the_code_emits(dashboards):
    """A renamed metric in lambda_src breaks this test, not the operator's dashboard."""
    ours = {
        line[1]
        for w in _widgets(dashboards["cnm-dash"])
        if w["type"] == "metric"
        for line in _lines(w)  # an expression line (Metrics Insights) has no namespace: ()
        if line[:1] == ("cnm-dash",)
    }
    assert ours and ours <= emitted_metrics(), ours - emitted_metrics()
    reconcile = ROOT / "modules" / "reconcile" / "main.tf"
    if reconcile.exists():  # the metrics modules/reconcile alarms on (issue 23, merged with this dashboard)
        text = reconcile.read_text()
        assert all(m in text for m in ("Unanswered", "Stuck", "Lost")) and "collection" in text


def test_without_the_outbound_logger_the_answers_widget_says_where_they_are(dashboards):
    titles = _by_title(_widgets(dashboards["cnm-nolog"]))
    text = titles["## Answers by status and error code"]
    assert text["type"] == "text" and "cnm-ingest responses" in text["properties"]["markdown"]
    assert not [w for w in titles.values() if w["type"] == "log"]


def test_the_dashboard_is_optional_and_named_from_the_prefix():
    variable = named(ROOT, "variable")["create_dashboard"]
    assert (variable["type"], variable["default"]) == ("bool", True) and variable["description"]
    dashboard = only(typed(ROOT, "resource", "aws_cloudwatch_dashboard"))
    assert dashboard["count"] == "var.create_dashboard ? 1 : 0"
    assert dashboard["dashboard_name"] == "${var.prefix}-cnm-ingest"
