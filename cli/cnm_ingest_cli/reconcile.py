"""``cnm-ingest reconcile``: one fate for every CNM of a window, and ``--fix`` (dry run unless ``--apply``).

The decisions are :mod:`cnm_ingest.reconcile`'s; this module gathers the stack's names, peeks at the DLQ
the way ``dlq list`` does (:func:`cnm_ingest_cli.ops.receive_all`, then every message released), and
renders the report. Exit codes: 0 when every record is answered or running within the workflow's
timeout; 8 (unaccounted) when some are lost, stuck, parked or ended without an answer; 2 for a
malformed window; 7 when ``--fix --apply`` could not fix every fixable record.
"""

from __future__ import annotations

from contextlib import nullcontext
from datetime import datetime, timedelta
from typing import Any

import click
from botocore.exceptions import ClientError
from rich.console import Console
from rich.table import Table

from cnm_ingest import aws, idempotency
from cnm_ingest import reconcile as rec
from cnm_ingest.cnm import response_message
from cnm_ingest.consumer import consume

from . import ops
from .errors import PartialFailure, Unaccounted
from .stack import Stack

COLOURS = {
    rec.SUCCESS: "green",
    rec.FAILURE: "yellow",
    rec.PARKED: "red",
    rec.RUNNING: "cyan",
    rec.STUCK: "red",
    rec.UNANSWERED: "red",
    rec.LOST: "bold red",
}
# Windows longer than this show a progress bar while the stream is read.
LONG_WINDOW = timedelta(hours=1)


def function_environment(name: str) -> dict[str, str]:
    """A function's environment variables ({} when it cannot be read)."""
    try:
        config = aws.client("lambda").get_function_configuration(FunctionName=name)
    except ClientError:
        return {}
    return (config.get("Environment") or {}).get("Variables") or {}


def parked_in_dlq(stack: Stack) -> tuple[list[rec.Parked], list[ops.DlqMessage]]:
    """Everything in the DLQ as :class:`cnm_ingest.reconcile.Parked` (messages held, then released: a peek)."""
    messages = ops.receive_all(stack.dlq_url, visibility=120)
    ops.release(stack.dlq_url, messages)
    parked = [rec.Parked.from_envelope(p.envelope, p.payload, ref=m) for m in messages for p in m.parked]
    return parked, messages


def _duration(text: str | None) -> timedelta | None:
    if text is None:
        return None
    now = ops.parse_time("now")
    return now - ops.parse_time(text, now)


def report(
    stack: Stack,
    start: datetime,
    end: datetime,
    *,
    stuck_after: timedelta | None = None,
    collection: str | None = None,
    provider: str | None = None,
    advance: ops.Progress = ops._noop,
) -> rec.Report:
    parked, _ = parked_in_dlq(stack)
    facts = rec.collect(
        notification_stream=stack.notification_stream_arn,
        response_stream=stack.response_stream_arn,
        executions_table=stack.require_executions_table(),
        start=start,
        end=end,
        parked=parked,
        progress=advance,
    )
    found = rec.decide(facts, stuck_after=stuck_after or rec.stuck_after_of(stack.state_machine_arn))
    return rec.select(found, collection, provider)


def fixer(stack: Stack) -> rec.Fixer:
    """The consumer's run as the deployed message consumer has it (its tables, DLQ, response stream)."""
    consumer = ops.consumer_environment(stack)
    responder = function_environment(f"{stack.prefix}-cnm-response")
    run = consume.Run(
        store=ops.routing_store(stack, ttl=0),
        settings=ops.consumer_settings(stack),
        once=idempotency.Once(consumer.get("IDEMPOTENCY_TABLE") or f"{stack.prefix}-idempotency"),
        source="cli_reconcile",
        queue_url=stack.dlq_url,
        response_stream_arn=consumer.get("RESPONSE_STREAM_ARN") or stack.response_stream_arn,
    )
    destinations = response_message.destinations_from_env(responder) or [stack.response_stream_arn]
    return rec.Fixer(run, responder.get("IDEMPOTENCY_TABLE") or f"{stack.prefix}-idempotency", destinations)


def fix(stack: Stack, found: rec.Report, *, apply: bool, advance: ops.Progress = ops._noop) -> list[dict[str, Any]]:
    """The fix of every row that has one: what it would do (dry run), or what it did."""
    rows = [r for r in found.rows if r.fix]
    if not apply:
        return [{"identifier": r.identifier, "fix": r.fix, "outcome": "would-" + str(r.fix)} for r in rows]
    helper = fixer(stack)
    out = []
    for r in rows:
        out.append({"identifier": r.identifier, "fix": r.fix, **rec.apply_fix(r, helper)})
        advance(1)
    return out


def _render(c: Console, found: rec.Report, fixes: list[dict[str, Any]] | None, dry_run: bool) -> None:
    summary = Table(title=f"reconcile {rec.iso(found.start)} .. {rec.iso(found.end)}: {len(found.rows)} record(s)")
    summary.add_column("fate")
    summary.add_column("records", justify="right")
    for fate, n in found.counts().items():
        summary.add_row(f"[{COLOURS[fate]}]{fate}[/]", str(n))
    c.print(summary)
    for g in found.gaps:
        c.print(
            f"[red]trimmed range[/] {rec.iso(g.start)} .. {rec.iso(g.end)}"
            + (f" of {g.shard}: the shard no longer holds it" if g.shard else ": older than the stream's retention")
            + f"; {g.known} record(s) known from the executions store, the stream's count unknown"
        )
    listing = Table(title="records")
    for col in ("arrival", "identifier", "fate", "detail", "collection", "executions", "fix"):
        listing.add_column(col, overflow="fold")
    for r in found.rows:
        listing.add_row(
            f"{r.arrival or ''} (trimmed)".strip() if r.in_gap else str(r.arrival),
            str(r.identifier if r.identifier is not None else "(unreadable)")
            + (f" (x{r.duplicates})" if r.duplicates > 1 else ""),
            f"[{COLOURS[r.fate]}]{r.fate}[/]",
            r.detail[:200],
            r.collection,
            ", ".join(r.executions)[:200],
            r.fix or "",
        )
    c.print(listing)
    if fixes is not None:
        table = Table(title="fix" + (" (dry run: --apply to act)" if dry_run else ""))
        for col in ("identifier", "fix", "outcome", "detail"):
            table.add_column(col, overflow="fold")
        for f in fixes:
            detail = f.get("reason") or ", ".join(f.get("executions") or []) or f.get("answer") or f.get("status") or ""
            table.add_row(str(f["identifier"]), str(f["fix"]), f["outcome"], str(detail)[:200])
        c.print(table)


FIXED = ("started", "already-started", "answered", "already-answered", "parked")


def command() -> click.Command:
    """The ``reconcile`` command (built on first use: it uses the helpers of :mod:`cnm_ingest_cli.main`)."""
    from .main import TIME, Settings, emit, json_option, pass_settings, progress, window

    @click.command()
    @click.option("--from", "since", type=TIME, required=True, help="Window start (ISO 8601 or 2h / 1d ago).")
    @click.option("--to", "until", type=TIME, default="now", show_default=True, help="Window end.")
    @click.option("--collection", help="Only this collection (name, or id name__version).")
    @click.option("--provider", help="Only this provider.")
    @click.option(
        "--stuck-after",
        metavar="DURATION",
        help="Running longer than this is stuck (30m / 2h / 1d; default: the workflow's timeout, else 2h).",
    )
    @click.option("--fix", "do_fix", is_flag=True, help="Show what would fix each fixable record (dry run).")
    @click.option("--apply", is_flag=True, help="With --fix: act (each side effect at most once).")
    @json_option
    @pass_settings
    def reconcile(
        settings: Settings,
        since: datetime,
        until: datetime,
        collection: str | None,
        provider: str | None,
        stuck_after: str | None,
        do_fix: bool,
        apply: bool,
    ) -> None:
        """One fate for every CNM of a window: answered, parked, running, stuck, unanswered or lost."""
        start, end = window(since, until, ("'--from'", "'--to'"))
        if apply and not do_fix:
            raise click.UsageError("--apply acts on what --fix finds: give --fix --apply")
        try:
            threshold = _duration(stuck_after)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="'--stuck-after'") from None
        stack = settings.stack
        bar = progress(settings, "reading the stream", None) if end - start > LONG_WINDOW else nullcontext(ops._noop)
        with bar as advance:
            found = report(
                stack, start, end, stuck_after=threshold, collection=collection, provider=provider, advance=advance
            )
        fixes = None
        if do_fix:
            with progress(settings, "fixing", len([r for r in found.rows if r.fix])) as advance:
                fixes = fix(stack, found, apply=apply, advance=advance)
        data = found.as_dict() | ({"fixes": fixes, "applied": apply} if fixes is not None else {})
        emit(settings, data, lambda c: _render(c, found, fixes, not apply))
        if fixes is not None and apply:
            failed = [f for f in fixes if f["outcome"] not in FIXED]
            if failed:
                raise PartialFailure(
                    f"{len(failed)} fix(es) not done (busy or failed): run reconcile --fix --apply again"
                )
            return
        left = found.unaccounted()
        if left:
            raise Unaccounted(
                f"{len(left)} of {len(found.rows)} record(s) not accounted for: "
                + ", ".join(f"{n} {f}" for f, n in found.counts().items() if n and f in rec.UNACCOUNTED)
            )

    return reconcile
