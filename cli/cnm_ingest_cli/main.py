"""``cnm-ingest``: status, send, responses, dlq, reingest, redrive-execution, replay, reconcile, rules (see
``cnm-ingest --help``).

AWS access is the standard credential chain (``--profile``, ``--region``, or the
environment); ``AWS_ENDPOINT_URL`` points every client at an emulator. The region is
``--region``, else ``AWS_DEFAULT_REGION``, else ``AWS_REGION``, else the profile's (boto3
reads ``AWS_DEFAULT_REGION`` and the profile; ``AWS_REGION``, which other AWS tools and the
Lambda runtime set, is honoured where boto3 would have had no variable). The stack comes from
``--outputs`` (``terraform output -json`` saved to a file, or the Terraform directory) or
``--prefix`` (checked against the module's naming rule). ``--json`` prints machine-readable
results, and errors as one JSON object on stderr; an error has the same exit code in both modes
(:data:`cnm_ingest_cli.errors.EXIT_CODES`).
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table

from cnm_ingest import aws, executions

from . import ops, reconcile
from .errors import MEANINGS, CliError, PartialFailure, RefusedInput, translate
from .stack import PREFIX_RULE, PREFIX_RULE_TEXT, Stack, find, region_name


@dataclass
class Settings:
    outputs: str | None
    prefix: str | None
    as_json: bool
    _stack: Stack | None = None

    @property
    def stack(self) -> Stack:
        if self._stack is None:
            self._stack = find(self.outputs, self.prefix)
        return self._stack


class Cli(click.Group):
    """Turns AWS errors into the documented exit codes, and marks each error with the output mode."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except CliError as exc:
            exc.as_json = _as_json(ctx)
            raise
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except Exception as exc:
            known = translate(exc, _where(ctx))
            if known is None:
                if os.environ.get("CNM_INGEST_DEBUG"):
                    raise
                known = CliError(f"unexpected {type(exc).__name__}: {exc} (CNM_INGEST_DEBUG=1 for the traceback)")
            known.as_json = _as_json(ctx)
            raise known from exc


def _as_json(ctx: click.Context) -> bool:
    return isinstance(ctx.obj, Settings) and ctx.obj.as_json


def _where(ctx: click.Context) -> str:
    """``stack 'p' in us-west-2``: what the command was looking at, for the error of a missing resource."""
    settings = ctx.obj if isinstance(ctx.obj, Settings) else None
    stack = settings._stack if settings is not None else None
    name = f"stack {stack.prefix!r}" if stack is not None and stack.prefix else "the stack"
    return f"{name} in {region_name() or '(no region)'}"


def console() -> Console:
    return Console(soft_wrap=False, width=int(os.environ.get("COLUMNS") or 0) or None)


def emit(settings: Settings, data: Any, render: Callable[[Console], None]) -> None:
    if settings.as_json:
        click.echo(json.dumps(data, indent=2, default=str, ensure_ascii=False))
    else:
        render(console())


@contextmanager
def progress(settings: Settings, label: str, total: int | None) -> Iterator[Callable[[int], None]]:
    err = Console(stderr=True)
    with Progress(
        TextColumn(label),
        BarColumn(),
        MofNCompleteColumn(),
        console=err,
        transient=True,
        disable=settings.as_json or not err.is_terminal,
    ) as bar:
        task = bar.add_task(label, total=total)
        yield lambda n: bar.advance(task, n)


def json_option(f: Callable[..., Any]) -> Callable[..., Any]:
    def set_json(ctx: click.Context, _param: Any, value: bool) -> None:
        settings = ctx.find_object(Settings)
        if value and settings is not None:
            settings.as_json = True

    return click.option(
        "--json", "as_json", is_flag=True, expose_value=False, callback=set_json, help="Print JSON for scripts."
    )(f)


pass_settings = click.make_pass_decorator(Settings)


@click.group(
    cls=Cli,
    context_settings={"help_option_names": ["-h", "--help"]},
    epilog="Exit codes (text and --json alike): " + ", ".join(f"{c} {m}" for c, m in MEANINGS.items()) + ".",
)
@click.option(
    "--outputs",
    envvar="CNM_INGEST_OUTPUTS",
    metavar="FILE|DIR",
    help="`terraform output -json` saved to FILE, or the Terraform DIR [env CNM_INGEST_OUTPUTS].",
)
@click.option(
    "--prefix",
    envvar="CNM_INGEST_PREFIX",
    callback=lambda _ctx, _param, value: check_prefix(value),
    help=f"The stack's name prefix: {PREFIX_RULE_TEXT} [env CNM_INGEST_PREFIX].",
)
@click.option("--profile", help="AWS profile (else the standard credential chain).")
@click.option("--region", help="AWS region (else AWS_DEFAULT_REGION, else AWS_REGION, else the profile's region).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts (errors too, on stderr).")
@click.pass_context
def cli(
    ctx: click.Context, outputs: str | None, prefix: str | None, profile: str | None, region: str | None, as_json: bool
) -> None:
    """Operate a cnm-ingest pipeline: find failures, send, replay, redrive, reingest."""
    if profile:
        os.environ["AWS_PROFILE"] = profile
    region = region or os.environ.get("AWS_DEFAULT_REGION") or os.environ.get("AWS_REGION")
    if region:  # boto3 reads AWS_DEFAULT_REGION only: the region chosen goes there
        os.environ["AWS_REGION"] = os.environ["AWS_DEFAULT_REGION"] = region
    aws.reset(session=True)
    ctx.obj = Settings(outputs, prefix, as_json)


def check_prefix(value: str | None) -> str | None:
    """``--prefix`` as the module's ``prefix`` variable allows it (a usage error otherwise)."""
    if value is not None and not PREFIX_RULE.fullmatch(value):
        raise click.BadParameter(f"{value[:100]!r} is not a stack prefix: {PREFIX_RULE_TEXT}", param_hint="'--prefix'")
    return value


class Time(click.ParamType):
    """ISO 8601 (UTC when no offset), ``now``, or relative to now (``30m``, ``2h``, ``7d``); a usage error else."""

    name = "time"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> datetime:
        if isinstance(value, datetime):
            return value
        try:
            return ops.parse_time(str(value))
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


TIME = Time()


def not_future(moment: datetime, name: str) -> datetime:
    """A window start: not in the future (a usage error: the window would be empty)."""
    now = datetime.now(UTC)
    if moment > now:
        raise click.BadParameter(f"{ops.iso(moment)} is in the future (now is {ops.iso(now)})", param_hint=name)
    return moment


def window(start: datetime, end: datetime, names: tuple[str, str]) -> tuple[datetime, datetime]:
    """A time window: the start not in the future, the end not before the start (usage errors)."""
    not_future(start, names[0])
    if end < start:
        raise click.BadParameter(f"{ops.iso(end)} is before {names[0]} {ops.iso(start)}", param_hint=names[1])
    return start, end


STATUS_CHOICE = click.Choice(executions.STATUSES, case_sensitive=False)
COLOURS = {"SUCCEEDED": "green", "FAILED": "red", "TIMED_OUT": "red", "ABORTED": "yellow", "RUNNING": "cyan"}


def _status(text: Any) -> str:
    return f"[{COLOURS.get(str(text), 'white')}]{text}[/]"


# --- status ----------------------------------------------------------------------------------------


@cli.command()
@click.argument("ref", required=False)
@click.option("--executions", "kind", flag_value=executions.EXECUTION, help="List executions.")
@click.option("--granules", "kind", flag_value=executions.GRANULE, help="List granules (their latest attempt).")
@click.option("--status", "statuses", multiple=True, type=STATUS_CHOICE, help="Only these statuses (repeatable).")
@click.option("--collection", help="Only this collection id (name__version).")
@click.option("--provider", help="Only this provider.")
@click.option(
    "--since", type=TIME, default="24h", show_default=True, help="Window start: ISO 8601 or 30m / 2h / 7d ago."
)
@click.option("--until", type=TIME, default="now", show_default=True, help="Window end.")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 10000), help="At most this many rows.")
@json_option
@pass_settings
def status(
    settings: Settings,
    ref: str | None,
    kind: str | None,
    statuses: tuple[str, ...],
    collection: str | None,
    provider: str | None,
    since: datetime,
    until: datetime,
    limit: int,
) -> None:
    """Counts by status; or executions / granules filtered; or one granule or execution (REF) in detail."""
    start, end = window(since, until, ("'--since'", "'--until'"))
    stack = settings.stack
    if ref:
        found = ops.detail(stack, ref, collection)
        emit(settings, found, lambda c: _render_detail(c, found))
    elif kind:
        items = ops.listing(
            stack,
            kind,
            [s.upper() for s in statuses] or executions.STATUSES,
            start,
            end,
            collection=collection,
            provider=provider,
            limit=limit,
        )
        emit(settings, items, lambda c: _render_list(c, kind, items))
    else:
        found = ops.counts(stack, start, end)
        data = {"since": ops.iso(start), "until": ops.iso(end), **found}

        def render(c: Console) -> None:
            table = Table(title=f"{stack.prefix}: {data['since']} .. {data['until']}")
            table.add_column("status")
            table.add_column("executions", justify="right")
            table.add_column("granules", justify="right")
            for s in executions.STATUSES:
                table.add_row(_status(s), str(found["executions"][s]), str(found["granules"][s]))
            c.print(table)

        emit(settings, data, render)


def _render_list(c: Console, kind: str, items: list[dict[str, Any]]) -> None:
    table = Table(title=f"{'executions' if kind == executions.EXECUTION else 'granules'} ({len(items)})")
    for col in (
        "updated",
        "status",
        "granule" if kind == executions.GRANULE else "execution",
        "collection",
        "provider",
        "error",
    ):
        table.add_column(col, overflow="fold")
    for i in items:
        ident = i.get("granule_id") if kind == executions.GRANULE else i.get("execution_name")
        table.add_row(
            str(i.get("updated_at")),
            _status(i.get("status")),
            str(ident),
            str(i.get("collection", "")),
            str(i.get("provider", "")),
            str((i.get("original_error") or {}).get("Error") or i.get("error") or ""),
        )
    c.print(table)


def _render_detail(c: Console, found: dict[str, Any]) -> None:
    if "execution" in found:
        e = found["execution"]
        c.print(f"[bold]execution[/] {e.get('execution_arn')}  {_status(e.get('status'))}")
        for k in (
            "started_at",
            "stopped_at",
            "granule_ids",
            "collection",
            "provider",
            "rule",
            "cnm_identifier",
            "source",
            "error",
            "original_error",
            "input_error",
        ):
            if e.get(k) not in (None, "", []):
                c.print(f"  {k}: {e[k]}", markup=False)
        table = Table(title="status events")
        table.add_column("status")
        table.add_column("time")
        for k, v in found["events"].items():
            table.add_row(k, str(v))
        c.print(table)
        if found.get("history"):
            h = Table(title="Step Functions history (last events)")
            for col in ("time", "type", "state", "error"):
                h.add_column(col, overflow="fold")
            for ev in found["history"][-15:]:
                h.add_row(str(ev["time"]), str(ev["type"]), str(ev.get("state") or ""), str(ev.get("error") or ""))
            c.print(h)
    else:
        for s in found["granule"]:
            c.print(
                f"[bold]granule[/] {s.get('granule_id')} ({s.get('collection')})  {_status(s.get('status'))}"
                f"  latest: {s.get('execution_name')}"
            )
            original = s.get("original_error") or {}
            if original:
                c.print(
                    f"  error: {original.get('Error')} ({original.get('errorCode')}): "
                    f"{executions.clean(original.get('errorMessage') or '', 400)}",
                    markup=False,
                )
        table = Table(title="attempts")
        for col in ("started", "status", "execution", "error"):
            table.add_column(col, overflow="fold")
        for a in found["attempts"]:
            table.add_row(
                str(a.get("started_at")),
                _status(a.get("status")),
                str(a.get("execution_name")) + (" (reingest)" if a.get("reingest") else ""),
                str(a.get("error") or ""),
            )
        c.print(table)
    if found.get("cnm"):
        c.print("[bold]CNM[/]")
        c.print_json(json.dumps(found["cnm"], ensure_ascii=False))


# --- send --------------------------------------------------------------------------------------------


@cli.command()
@click.argument("paths", nargs=-1, required=True)
@json_option
@pass_settings
def send(settings: Settings, paths: tuple[str, ...]) -> None:
    """Validate CNM files (FILE or DIR of *.json) and put the valid ones on the notification stream."""
    files = ops.cnm_files(paths)
    with progress(settings, "sending", len(files)) as advance:
        results = ops.send(settings.stack, files, advance)

    def render(c: Console) -> None:
        streams = {r["stream"].rsplit("/", 1)[-1] for r in results if r.get("stream")}
        table = Table(title=f"sent to {', '.join(sorted(streams))}" if streams else "nothing sent")
        for col in ("file", "identifier", "shard", "sequence number / refused"):
            table.add_column(col, overflow="fold")
        for r in results:
            table.add_row(
                r["file"],
                r.get("identifier", ""),
                r.get("shard_id", ""),
                r.get("sequence_number") or f"[red]refused:[/] {r['refused']}",
            )
        c.print(table)

    emit(settings, results, render)
    refused = [r for r in results if "refused" in r]
    if refused:
        raise RefusedInput(
            f"{len(refused)} of {len(results)} file(s) refused: not valid CNM notifications, "
            "or not files that can be sent (the reason is on each row)"
        )


# --- responses -----------------------------------------------------------------------------------------


@cli.command()
@click.option("--since", type=TIME, help="From this time (default: the oldest record kept).")
@click.option("--identifier", help="Only responses to this CNM identifier.")
@click.option("--collection", help="Only this collection name.")
@click.option("--status", type=click.Choice(["SUCCESS", "FAILURE"]), help="Only this response status.")
@click.option("--follow", "-f", is_flag=True, help="Keep reading new responses (Ctrl-C to stop).")
@click.option("--limit", type=click.IntRange(1), help="Stop after this many.")
@json_option
@pass_settings
def responses(
    settings: Settings,
    since: datetime | None,
    identifier: str | None,
    collection: str | None,
    status: str | None,
    follow: bool,
    limit: int | None,
) -> None:
    """Read (or follow) the CNM response stream."""
    if since is not None:
        not_future(since, "'--since'")
    found = ops.responses(
        settings.stack,
        since=since,
        identifier=identifier,
        collection=collection,
        status=status,
        follow=follow,
        limit=limit,
    )
    c = console()
    for r in found:
        if settings.as_json:
            click.echo(json.dumps(r, default=str, ensure_ascii=False))
            continue
        m = r["message"]
        resp = m.get("response") or {}
        colour = "green" if resp.get("status") == "SUCCESS" else "red"
        c.print(
            f"{r['arrival']}  [{colour}]{resp.get('status', '?')}[/]  {m.get('identifier')}  "
            f"{resp.get('errorCode') or ''} {executions.clean(resp.get('errorMessage') or '', 200)}"
        )


# --- dlq ------------------------------------------------------------------------------------------------


@cli.group()
def dlq() -> None:
    """The dead-letter queue (<prefix>-kinesisFailure): list, show, redrive."""


@dlq.command("list")
@click.option("--limit", type=click.IntRange(1), help="At most this many messages.")
@click.option("--payloads", is_flag=True, help="Include the decoded payloads.")
@json_option
@pass_settings
def dlq_list(settings: Settings, limit: int | None, payloads: bool) -> None:
    """Every DLQ message, decoded (our envelope, Lambda's async failure record, SNS notifications)."""
    found = ops.dlq_list(settings.stack, limit, payloads)

    def render(c: Console) -> None:
        table = Table(title=f"{len(found)} message(s) in the DLQ")
        for col in ("message id", "kind", "source", "error", "identifier", "sequence", "bytes", "reason"):
            table.add_column(col, overflow="fold")
        for m in found:
            for r in m["records"] or [{}]:
                table.add_row(
                    m["message_id"],
                    m["kind"],
                    str(r.get("source") or ""),
                    str(r.get("error_type") or ""),
                    str(r.get("identifier") or ""),
                    str(r.get("sequence_number") or ""),
                    str(r.get("payload_bytes") if r.get("payload_bytes") is not None else "-"),
                    executions.clean(r.get("reason") or m.get("error") or "", 300),
                )
        c.print(table)

    emit(settings, found, render)


@dlq.command("show")
@click.argument("message_id")
@json_option
@pass_settings
def dlq_show(settings: Settings, message_id: str) -> None:
    """One DLQ message in full, payload included."""
    found = ops.dlq_show(settings.stack, message_id)
    emit(settings, found, lambda c: c.print_json(json.dumps(found, default=str, ensure_ascii=False)))


@dlq.command("redrive")
@click.argument("message_ids", nargs=-1)
@click.option("--all", "everything", is_flag=True, help="Every message in the DLQ.")
@click.option("--dry-run", is_flag=True, help="Show what would be put; change nothing.")
@json_option
@pass_settings
def dlq_redrive(settings: Settings, message_ids: tuple[str, ...], everything: bool, dry_run: bool) -> None:
    """Redrive DLQ messages once each: parked records back on the notification stream, parked responses sent
    again, hydrate gaps read again from the stream (or reported lost); a message is deleted when all of it is
    redriven, and the exit code is 7 when anything is left."""
    if not message_ids and not everything:
        raise click.UsageError("name the message id(s) to redrive, or --all")
    with progress(settings, "redriving", None) as advance:
        outcomes = ops.dlq_redrive(settings.stack, message_ids, dry_run=dry_run, progress=advance)

    def render(c: Console) -> None:
        table = Table(title="redrive" + (" (dry run)" if dry_run else ""))
        for col in ("message id", "kind", "identifier", "old sequence", "outcome", "new sequence / reason"):
            table.add_column(col, overflow="fold")
        for o in outcomes:
            table.add_row(
                o["message_id"],
                str(o.get("kind") or ""),
                str(o.get("identifier") or ""),
                str(o.get("sequence_number") or ""),
                o["outcome"],
                str(o.get("new_sequence_number") or o.get("reason") or ""),
            )
        c.print(table)

    emit(settings, outcomes, render)
    bad = ops.not_redriven(outcomes)
    if bad:
        lost = [o for o in bad if o["outcome"] == "lost"]
        raise PartialFailure(
            f"{len(bad)} of {len(outcomes)} not redriven ("
            + ", ".join(f"{n} {k}" for k, n in sorted(Counter(o["outcome"] for o in bad).items()))
            + "); their messages stay in the DLQ"
            + "".join(f"; lost: {o['reason']}" for o in lost)
        )


# --- reingest ------------------------------------------------------------------------------------------


@cli.command()
@click.argument("ref")
@click.option("--collection", help="The granule's collection id, when the id exists in several.")
@click.option(
    "--idempotency-key",
    "key",
    help="Name the execution from this key: rerunning with the same key starts nothing new (for scripts that retry).",
)
@json_option
@pass_settings
def reingest(settings: Settings, ref: str, collection: str | None, key: str | None) -> None:
    """Run the workflow again for a GRANULE (its latest execution) or an EXECUTION, replacing duplicates.

    The rule, collection and provider are read again from the configuration tables (as the consumer would
    route the CNM now), and what differs from the first run's configuration is printed."""
    result = ops.reingest(settings.stack, ref, collection, key=key)

    def render(c: Console) -> None:
        c.print(
            f"reingest of {result['reingest_of'].rsplit(':', 1)[-1]} (rule {result['rule']})\n"
            f"  started   {result['execution_name']}" + ("" if result["started"] else " (already existed)"),
            markup=False,
        )
        if not result["first_run_known"]:
            c.print("  the first run's input is gone: its configuration cannot be compared", markup=False)
        elif not result["changes"]:
            c.print("  configuration: as in the first run", markup=False)
        else:
            table = Table(title="configuration changed since the first run")
            for col in ("setting", "first run", "now"):
                table.add_column(col, overflow="fold")
            for ch in result["changes"]:
                table.add_row(ch["setting"], json.dumps(ch["first_run"]), json.dumps(ch["now"]))
            c.print(table)

    emit(settings, result, render)


# --- redrive-execution ---------------------------------------------------------------------------------


@cli.command("redrive-execution")
@click.argument("execution")
@json_option
@pass_settings
def redrive_execution(settings: Settings, execution: str) -> None:
    """Restart a FAILED, TIMED_OUT or ABORTED EXECUTION (ARN or name) from the state that failed (Step
    Functions' RedriveExecution, within 14 days of its stop); anything else is refused (exit 6)."""
    result = ops.redrive_execution(settings.stack, execution)
    emit(
        settings,
        result,
        lambda c: c.print(
            f"redrove {result['execution_name']} ({result['status_before']}"
            + (f": {result['error_before']}" if result["error_before"] else "")
            + f"), redrive {result['redrive_count']} at {result['redrive_date']}",
            markup=False,
        ),
    )


# --- replay --------------------------------------------------------------------------------------------


@cli.command()
@click.option("--from", "since", type=TIME, required=True, help="Window start (ISO 8601 or 2h / 1d ago).")
@click.option("--to", "until", type=TIME, default="now", show_default=True, help="Window end.")
@click.option("--shard", "shard_ids", multiple=True, help="Only this shard (repeatable).")
@json_option
@pass_settings
def replay(settings: Settings, since: datetime, until: datetime, shard_ids: tuple[str, ...]) -> None:
    """Run the consumer's processing on the notification records of a time window (already started: no-op)."""
    start, end = window(since, until, ("'--from'", "'--to'"))
    with progress(settings, "replaying", None) as advance:
        summary = ops.replay(settings.stack, start, end, shard_ids, advance)
    counts = {k: summary[k] for k in ("records", "started", "already_done", "parked", "failed", "executions_started")}

    def render(c: Console) -> None:
        table = Table(title=f"replay {ops.iso(start)} .. {ops.iso(end)}")
        for k in counts:
            table.add_column(k.replace("_", " "), justify="right")
        table.add_row(*map(str, counts.values()))
        c.print(table)

    emit(settings, summary, render)
    if summary["failed"]:
        raise PartialFailure(f"{summary['failed']} record(s) failed with an AWS error; replay the window again")


# --- rules ---------------------------------------------------------------------------------------------


@cli.group()
def rules() -> None:
    """The rules table: list, enable, disable (consumers see a change within RULES_CACHE_SECONDS)."""


@rules.command("list")
@json_option
@pass_settings
def rules_list(settings: Settings) -> None:
    """Every rule: name, state, collection, version, provider, workflow."""
    found = ops.rules_list(settings.stack)

    def render(c: Console) -> None:
        table = Table(title=f"rules ({settings.stack.rules_table})")
        for col in ("name", "state", "collection", "version", "provider", "workflow"):
            table.add_column(col, overflow="fold")
        for r in found:
            table.add_row(
                r["name"],
                "[green]ENABLED[/]" if r["state"] == "ENABLED" else f"[yellow]{r['state']}[/]",
                r["collection"],
                r["version"] or "(any)",
                r["provider"],
                r["workflow"],
            )
        c.print(table)

    emit(settings, found, render)


def _set_rule(state: str) -> Callable[..., None]:
    @click.argument("name")
    @json_option
    @pass_settings
    def command(settings: Settings, name: str) -> None:
        result = ops.rule_state(settings.stack, name, state)
        emit(settings, result, lambda c: c.print(f"rule {name}: {state}", markup=False))

    command.__doc__ = f"Set a rule {state}."
    return command


rules.command("enable")(_set_rule("ENABLED"))
rules.command("disable")(_set_rule("DISABLED"))


# --- reconcile (its own module: cnm_ingest_cli.reconcile) ----------------------------------------

cli.add_command(reconcile.command())


def main() -> None:
    cli(prog_name="cnm-ingest")
