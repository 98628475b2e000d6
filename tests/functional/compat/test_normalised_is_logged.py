"""Lenient input is logged: TranslateMessage says what it normalised (issue 13, "log what was normalised")."""

from __future__ import annotations

import io
import json

from handlers import translate_message

from tests.unit.compat.conftest import load


def test_translate_logs_each_normalisation_once(lambda_context):
    handler = translate_message.logger.registered_handler
    buffer = io.StringIO()
    previous = handler.setStream(buffer)
    try:
        cnm = load("podaac_sftp_microseconds_naive.json")  # submissionTime without an offset
        out = translate_message.handler(
            {"message": {"meta": {"cnm": cnm}, "payload": {}}, "execution": {}}, lambda_context
        )
        valid = load("podaac_http_sha512.json")
        valid["submissionTime"] = "2024-01-02T03:04:05Z"
        valid["product"]["files"] = [dict(f, checksumType="SHA512") for f in valid["product"]["files"]]
        translate_message.handler({"message": {"meta": {"cnm": valid}, "payload": {}}, "execution": {}}, lambda_context)
    finally:
        handler.setStream(previous)
    lines = [json.loads(line) for line in buffer.getvalue().splitlines() if line.startswith("{")]
    notes = [line for line in lines if line.get("message") == "CNM normalised"]
    assert len(notes) == 1 and notes[0]["identifier"] == cnm["identifier"]
    assert any("submissionTime" in n for n in notes[0]["normalised"]), notes[0]["normalised"]
    assert out["payload"]["granules"][0]["files"][0]["source"].startswith("sftp://")
