"""Where a message consumer record's CPU goes: microseconds per stage, for one checkout or two side by side.

    python bench/profile_consumer.py [--root OTHER_CHECKOUT] [--cprofile]

Each stage of :func:`cnm_ingest.consumer.consume.plan` is timed alone (best of 5 timeit
runs) on a two-file notification from ``bench/consumer_fakes.py``, then the
whole handler per record (process CPU time over 100-record batches, as
``consumer_cpu.py`` measures it). ``--cprofile`` adds the handler's top
functions by own time. Not a row of ``bench.run``: it explains the
``consumer CPU`` rows (README "Performance").
"""

from __future__ import annotations

import contextlib
import cProfile
import io
import pstats
import sys
import time
import timeit
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import consumer_fakes as fakes

BATCH = 100


def stages() -> list[tuple[str, float]]:
    from cnm_ingest.cnm import decode, normalize, notification, validate
    from cnm_ingest.consumer import consume, rulebook
    from cnm_ingest.workflow import payload

    raw = fakes.kinesis_records([fakes.notification(12345, 1)], 10**7)[0]
    record = consume.SourceRecord.from_event(raw)
    data = decode.b64decode(record.data)
    doc = decode.decode_json(data)
    ndoc, _ = normalize.normalize_notification(doc)
    validate.validate_notification(ndoc)
    store, settings = rulebook.store(), consume.Settings.from_env()
    planned = consume.plan(record, store, settings)
    note = notification.Notification.read(ndoc)  # what consume.plan routes with (read once a record)
    rule = store.rule_index().require(note)[0]
    kwargs = {
        "rule": rule.as_message_rule(),
        "collection": store.collection(rule.collection_name, "1"),
        "provider": store.provider(rule.provider),
        "stack": settings.stack,
        "buckets": settings.buckets,
        "state_machine_arn": rule.workflow_arn,
        "execution": planned[0].name,
        "source": record.source(),
    }
    cases = [
        ("SourceRecord.from_event", lambda: consume.SourceRecord.from_event(raw)),
        ("decode.b64decode", lambda: decode.b64decode(record.data)),
        ("decode.decode_json", lambda: decode.decode_json(data)),
        ("normalize.normalize_notification", lambda: normalize.normalize_notification(doc)),
        ("validate.validate_notification", lambda: validate.validate_notification(ndoc)),
        *(
            # the consumer's path: the shortcut for a settled notification (checkouts that have it)
            [("validate.normalize_and_validate", lambda: validate.normalize_and_validate(doc))]
            if hasattr(validate, "normalize_and_validate")
            else []
        ),
        ("notification.Notification.read", lambda: notification.Notification.read(ndoc)),
        ("rule_index().require (the Notification)", lambda: store.rule_index().require(note)),
        ("SourceRecord.source (with the arrival)", record.source),
        ("payload.execution_name", lambda: payload.execution_name("granule-12345", "10000000", rule.name)),
        ("payload.build_workflow_input", lambda: payload.build_workflow_input(ndoc, **kwargs)),
        ("consume.plan (all of the above but from_event)", lambda: consume.plan(record, store, settings)),
    ]
    out = []
    for name, fn in cases:
        number = 2000
        out.append((name, min(timeit.repeat(fn, number=number, repeat=5)) / number * 1e6))
    return out


def handler_per_record(batches: int = 60, profile: bool = False) -> tuple[float, str]:
    handler = fakes.consumer().handler
    ctx = fakes.Context()
    events = [
        {
            "Records": fakes.kinesis_records(
                [fakes.notification(10**6 + n * BATCH + i, 1) for i in range(BATCH)], 10**7 + n * BATCH
            )
        }
        for n in range(batches + 1)
    ]
    report = ""
    with contextlib.redirect_stdout(io.StringIO()):
        handler(events[0], ctx)
        prof = cProfile.Profile() if profile else None
        start = time.process_time()
        if prof:
            prof.enable()
        for event in events[1:]:
            handler(event, ctx)
        if prof:
            prof.disable()
        cpu = time.process_time() - start
    if prof:
        text = io.StringIO()
        pstats.Stats(prof, stream=text).sort_stats("tottime").print_stats(25)
        report = text.getvalue()
    return cpu / (batches * BATCH) * 1e6, report


def main(argv: list[str]) -> int:
    root = fakes.root_from_argv(argv)
    with fakes.session(root):
        sfn = fakes.FakeStepFunctions()
        fakes.Fakes(1, sfn).install()
        rows = stages()
        per_record, _ = handler_per_record()
        report = handler_per_record(profile=True)[1] if "--cprofile" in argv else ""
    print(f"checkout {root}")
    for name, micros in rows:
        print(f"  {name:48} {micros:7.2f} us")
    print(f"  {'handler, per record (CPU, 100-record batches)':48} {per_record:7.2f} us")
    if report:
        print(report)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
