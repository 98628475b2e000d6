"""TranslateMessage: CNM notification -> ``payload.granules`` (Cumulus granule shape)."""

from __future__ import annotations

import cnm_ingest.coldstart

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from cnm_ingest.cnm.normalize import normalize_notification
from cnm_ingest.errors import CnmValidationError
from cnm_ingest.workflow import payload, task, translate_message

logger = Logger()


def translate(message: task.Message, execution: task.Execution) -> task.Message:
    meta = message.get("meta") or {}
    cnm = payload.cnm(message)
    if cnm is None:
        raise CnmValidationError("the workflow message carries no CNM (meta.cnm or meta.cnm_ref)", "$.meta.cnm")
    cnm, notes = normalize_notification(cnm)
    if notes:
        logger.info("CNM normalised", extra={"identifier": cnm.get("identifier"), "normalised": notes})
    collection = meta.get("collection")
    if not isinstance(collection, dict):
        collection = {}
    granules = translate_message.translate(cnm, collection, task.collection_config(meta))
    logger.info(
        "translated CNM", extra={"identifier": cnm.get("identifier"), "granules": [g["granuleId"] for g in granules]}
    )
    return payload.set_part(message, "payload", "granules", granules)


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> task.Message:
    return task.run(event, translate)


cnm_ingest.coldstart.done()  # last: see cnm_ingest.coldstart
