"""CNM responses: build (always schema-valid for a FAILURE), address, and send to every destination.

A response keeps the notification's ``version``, ``identifier``,
``collection``, ``provider``, ``trace`` and ``submissionTime`` as sent wherever
the schema allows them; a value the schema rejects is repaired the way
:mod:`cnm_ingest.cnm.normalize` reads it (``v1.0`` -> ``1.0``, a date-time without
offset -> UTC), and only a value that cannot be read is replaced (``version``
1.6.1, ``submissionTime`` = ``receivedTime``, identifier/collection
``unknown``). So a FAILURE response can be built for any input at all.

Destinations are Kinesis stream ARNs and SNS topic ARNs (``RESPONSE_STREAM_ARN``,
``RESPONSE_TOPIC_ARN`` and the JSON list ``RESPONSE_DESTINATIONS``); SNS
messages carry the message attributes PO.DAAC's CnmResponse sets
(:func:`message_attributes`), which providers' subscription filters key on.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from cnm_ingest import aws
from cnm_ingest.cnm.normalize import VERSIONS, date_time, normalize_notification
from cnm_ingest.cnm.validate import validate_response
from cnm_ingest.errors import ERROR_CODES, ConfigurationError

DEFAULT_VERSION = "1.6.1"
UNKNOWN = "unknown"
MAX_ERROR_MESSAGE = 4096
MAX_ATTRIBUTE_CHARS = 1024  # a provider's trace can be long; a filter attribute does not need all of it


def now_iso() -> str:
    """RFC 3339 UTC timestamp with microseconds, as the CNM samples use."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _text(value: Any, limit: int) -> str:
    """``value`` as a string of at most ``limit`` characters that encodes as UTF-8 (lone surrogates replaced)."""
    text = value if isinstance(value, str) else str(value)
    return text[:limit].encode("utf-8", "replace").decode("utf-8")


def _collection(value: Any) -> Any:
    if isinstance(value, str):
        return _text(value, len(value))
    if isinstance(value, dict) and isinstance(value.get("name"), str):
        if isinstance(value.get("version"), str):
            return value
        return value["name"]  # the string form of the same collection
    return UNKNOWN


def clean_ingestion_metadata(value: Any) -> dict[str, Any] | None:
    """``value`` as a schema-valid ``ingestionMetadata`` object (``catalogId``/``catalogUrl`` must be strings)."""
    if not isinstance(value, dict):
        return None
    meta = {k: v for k, v in value.items() if k not in ("catalogId", "catalogUrl") or isinstance(v, str)}
    return meta or None


def build_response(
    cnm: Any,
    *,
    status: str,
    received_time: str | None = None,
    error_code: str | None = None,
    error_message: str | None = None,
    product: dict[str, Any] | None = None,
    ingestion_metadata: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Build a CNM response for the notification ``cnm`` (any value; see the module doc) and validate it.

    A FAILURE carries ``errorCode`` (one of the schema's three; anything else
    is PROCESSING_ERROR) and ``errorMessage`` (cut to 4096 characters). A
    SUCCESS carries ``product`` and ``ingestionMetadata`` when given.
    """
    if status not in ("SUCCESS", "FAILURE"):
        raise ValueError(f"status must be SUCCESS or FAILURE, not {status!r}")
    src, _notes = normalize_notification(cnm if isinstance(cnm, dict) else {})
    received = date_time(received_time) or now_iso()
    response: dict[str, Any] = {
        "version": src["version"] if src.get("version") in VERSIONS else DEFAULT_VERSION,
        "identifier": _text(src["identifier"], len(src["identifier"]))
        if isinstance(src.get("identifier"), str)
        else UNKNOWN,
        "collection": _collection(src.get("collection")),
        "submissionTime": date_time(src.get("submissionTime")) or received,
        "receivedTime": received,
        "processCompleteTime": now_iso(),
        "response": {"status": status},
    }
    if isinstance(src.get("submissionTime"), str) and date_time(src["submissionTime"]) == src["submissionTime"]:
        response["submissionTime"] = src["submissionTime"]  # as sent, when the schema takes it as it is
    for key in ("provider", "trace"):
        if isinstance(src.get(key), str):
            response[key] = _text(src[key], len(src[key]))
    if status == "FAILURE":
        response["response"]["errorCode"] = error_code if error_code in ERROR_CODES else "PROCESSING_ERROR"
        response["response"]["errorMessage"] = _text(error_message or "unknown error", MAX_ERROR_MESSAGE)
        return validate_response(response)
    meta = clean_ingestion_metadata(ingestion_metadata)
    if meta:
        response["response"]["ingestionMetadata"] = meta
    if product is not None:
        response["product"] = product
    return validate_response(response)


# --- addressing -----------------------------------------------------------------------------------


def staged_uri(bucket: str, key: str, distribution_endpoint: str | None = None) -> str:
    """``s3://bucket/key``, or ``<distribution_endpoint>/bucket/key`` (percent-encoded) when an endpoint is set.

    Every path segment is percent-encoded (``#``, ``?`` and ``%`` cannot end
    the path early), and ``.``/``..`` segments are encoded too, so a client
    resolving the URI cannot step out of ``<endpoint>/bucket/``.
    """
    if not distribution_endpoint:
        return f"s3://{bucket}/{key}"
    segments = [quote(s, safe="") for s in f"{bucket}/{key}".split("/")]
    segments = [s.replace(".", "%2E") if s in (".", "..") else s for s in segments]
    return f"{distribution_endpoint.rstrip('/')}/{'/'.join(segments)}"


def _file_name(f: dict[str, Any]) -> str:
    """A granule file's name: ours (``name``), or Cumulus's (``fileName``, what PO.DAAC's CnmResponse reads, e.g.
    from a granule a DAAC's extra state wrote), else the last segment of its key."""
    for key in ("name", "fileName"):
        if isinstance(f.get(key), str) and f[key]:
            return str(f[key])
    return str(f["key"]).rsplit("/", 1)[-1]


def _size(value: Any) -> Any:
    """A file size as an integer when it is one (``1024.0`` -> ``1024``, as PO.DAAC's ``getAsLong``)."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


def response_product(
    granules: list[dict[str, Any]], cnm: Any, distribution_endpoint: str | None = None
) -> dict[str, Any] | None:
    """The SUCCESS ``product``: every granule's staged files, addressed by :func:`staged_uri`.

    ``name`` is the first granule's ``producerGranuleId``, else its ``granuleId``, as PO.DAAC's
    CnmResponse answers (never the notification's ``product.name``, which may be a file name);
    ``dataVersion`` and ``dataProcessingType`` are kept from the notification. The differences from
    PO.DAAC's answer are in docs/compat-table.md ("Field by field").
    """
    files = []
    for granule in granules:
        for f in granule.get("files", []):
            entry = {
                "type": f["type"],
                "name": _file_name(f),
                "uri": staged_uri(f["bucket"], f["key"], distribution_endpoint),
                "size": _size(f["size"]),
            }
            if f.get("checksum"):
                entry.update(checksumType=f.get("checksumType") or "md5", checksum=f["checksum"])
            files.append(entry)
    if not files:
        return None
    source: dict[str, Any] = cnm["product"] if isinstance(cnm, dict) and isinstance(cnm.get("product"), dict) else {}
    name = granules[0].get("producerGranuleId") or granules[0]["granuleId"]
    product: dict[str, Any] = {"name": name, "files": files}
    for key in ("dataVersion", "dataProcessingType"):
        if isinstance(source.get(key), str):
            product[key] = source[key]
    return product


def ingestion_metadata_from(message: dict[str, Any]) -> dict[str, Any] | None:
    """``ingestionMetadata`` left in the workflow message by a DAAC's extra state.

    Either the state writes the object itself to ``meta.ingestionMetadata``
    (e.g. ``"ResultPath": "$.meta.ingestionMetadata"``), or, as Cumulus's
    PostToCmr does, it sets ``cmrConceptId`` and ``cmrLink`` on the granule,
    which PO.DAAC's CnmResponse reports as ``catalogId`` / ``catalogUrl``.
    """
    meta: dict[str, Any] = message["meta"] if isinstance(message.get("meta"), dict) else {}
    found = clean_ingestion_metadata(meta.get("ingestionMetadata"))
    if found:
        return found
    granules = (message.get("payload") or {}).get("granules") if isinstance(message.get("payload"), dict) else None
    first = granules[0] if isinstance(granules, list) and granules and isinstance(granules[0], dict) else {}
    if isinstance(first.get("cmrConceptId"), str) and isinstance(first.get("cmrLink"), str):
        return {"catalogId": first["cmrConceptId"], "catalogUrl": first["cmrLink"]}
    return None


def _collection_name(collection: Any) -> str | None:
    if isinstance(collection, dict):
        collection = collection.get("name")
    return collection if isinstance(collection, str) and collection else None


def message_attributes(response: dict[str, Any], cnm: Any) -> dict[str, dict[str, str]]:
    """SNS message attributes for ``response``, as PO.DAAC's CnmResponse sets them.

    ``CNM_RESPONSE_STATUS`` (SUCCESS|FAILURE), ``COLLECTION`` (collection short
    name), ``DATA_VERSION`` (``product.dataVersion``, else the collection
    version), and ``dataProcessingType`` / ``trace`` when the notification has
    them. An attribute with no value is left out (SNS rejects empty values).
    """
    cnm = cnm if isinstance(cnm, dict) else {}
    product = cnm.get("product") if isinstance(cnm.get("product"), dict) else {}
    coll = response.get("collection")
    values = {
        "CNM_RESPONSE_STATUS": response["response"]["status"],
        "COLLECTION": _collection_name(coll),
        "DATA_VERSION": product.get("dataVersion")
        if isinstance(product.get("dataVersion"), str) and product["dataVersion"]
        else (coll.get("version") if isinstance(coll, dict) else None),
        "dataProcessingType": product.get("dataProcessingType"),
        "trace": cnm.get("trace"),
    }
    return {
        name: {"DataType": "String", "StringValue": _text(v, MAX_ATTRIBUTE_CHARS)}
        for name, v in values.items()
        if isinstance(v, str) and v
    }


# --- destinations ---------------------------------------------------------------------------------


def destination_kind(arn: str) -> str:
    """``kinesis`` or ``sns`` for a destination ARN; anything else is a ConfigurationError."""
    parts = arn.split(":", 5) if isinstance(arn, str) else []
    if (
        len(parts) == 6
        and parts[0] == "arn"
        and parts[2] == "kinesis"
        and parts[5].startswith("stream/")
        and len(parts[5]) > 7
    ):
        return "kinesis"
    if len(parts) == 6 and parts[0] == "arn" and parts[2] == "sns" and parts[5] and ":" not in parts[5]:
        return "sns"
    raise ConfigurationError(f"response destination {arn!r} is not a Kinesis stream ARN or an SNS topic ARN")


def destinations_from_env(environ: Any = None) -> list[str]:
    """The response destinations, in order, each once: ``RESPONSE_STREAM_ARN``, ``RESPONSE_TOPIC_ARN``,
    then ``RESPONSE_DESTINATIONS`` (a JSON list of ARNs). Every ARN is checked."""
    environ = os.environ if environ is None else environ
    arns = [environ.get("RESPONSE_STREAM_ARN") or "", environ.get("RESPONSE_TOPIC_ARN") or ""]
    raw = environ.get("RESPONSE_DESTINATIONS") or "[]"
    try:
        listed = json.loads(raw)
    except ValueError:
        listed = None
    if not isinstance(listed, list) or not all(isinstance(a, str) for a in listed):
        raise ConfigurationError(f"RESPONSE_DESTINATIONS must be a JSON list of ARN strings, not {raw[:200]!r}")
    out: list[str] = []
    for arn in [*arns, *listed]:
        if arn and arn not in out:
            destination_kind(arn)
            out.append(arn)
    if not out:
        raise ConfigurationError("no response destination: set RESPONSE_STREAM_ARN or RESPONSE_DESTINATIONS")
    return out


def put_response(response: dict[str, Any], stream_arn: str) -> dict[str, Any]:
    """Put a response on a Kinesis response stream, keyed by identifier."""
    return aws.client("kinesis").put_record(
        StreamARN=stream_arn,
        Data=json.dumps(response, separators=(",", ":")).encode("utf-8"),
        PartitionKey=response["identifier"][:256] or "cnm",
    )


def publish_response(response: dict[str, Any], topic_arn: str, attributes: dict[str, dict[str, str]]) -> dict[str, Any]:
    """Publish a response to an SNS topic with its message attributes."""
    return aws.client("sns").publish(
        TopicArn=topic_arn, Message=json.dumps(response, separators=(",", ":")), MessageAttributes=attributes
    )


def send_response(
    response: dict[str, Any],
    destinations: list[str],
    attributes: dict[str, dict[str, str]],
    done: set[str] | None = None,
) -> list[str]:
    """Send ``response`` to each destination not in ``done``, in order; returns the ARNs sent to.

    ``done`` is updated as each send succeeds, so a caller that keeps it
    across a retry (e.g. in an idempotency record) does not answer twice on a
    destination that already has the answer when a later one failed.
    """
    done = set() if done is None else done
    sent = []
    for arn in destinations:
        if arn in done:
            continue
        if destination_kind(arn) == "kinesis":
            put_response(response, arn)
        else:
            publish_response(response, arn, attributes)
        done.add(arn)
        sent.append(arn)
    return sent
