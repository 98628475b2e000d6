"""``url_path`` templates with Cumulus's syntax and functions, and where each file goes (collection ``files``).

Syntax (as Cumulus's ``url-path-template``): ``{path}`` is a value from the
context by a dotted path (``{file.name}``, ``{cmrMetadata.Granule.Temporal.RangeDateTime.BeginningDateTime}``,
``{granule.files[0].name}``); ``{fn(arg, arg)}`` calls a function. An
argument is a context path when its first segment is a context key
(``file``, ``granule``, ``cmrMetadata``, ``collection``, ``cnm``), else a
literal. A missing or empty value is an error, except in ``defaultTo``.

==================  ==========================================  ==================================
function            result                                      example
==================  ==========================================  ==================================
extractYear(v)      UTC year of the date-time v                 ``2017``
extractMonth(v)     UTC month, not zero-padded                  ``9``
extractDate(v)      UTC day of the month, not zero-padded       ``3``
extractHour(v)      UTC hour, not zero-padded                   ``7``
dateFormat(v, f)    v formatted with moment.js tokens (subset)  ``dateFormat(v, YYYY/DDDD)``
substring(v, s, e)  JavaScript ``substring`` (clamped, swapped)  ``substring(file.name, 0, 3)``
extractPath(v)      POSIX dirname of v                          ``a/b`` for ``a/b/c``
defaultTo(v, d)     v, else d (a path or a literal)             ``defaultTo(cmrMetadata.x, misc)``
==================  ==========================================  ==================================

Date-times are read as in :mod:`cnm_ingest.cnm.normalize` (an offset-less one is
UTC; a date alone is midnight UTC; a number is milliseconds since the epoch,
as JavaScript's ``Date``).

Our templates' placeholders keep working: ``{stack}``, ``{collection}``
(``name__version``), ``{collection_name}``, ``{collection_version}``,
``{granuleId}``.

Differences from Cumulus, on purpose: a rendered value is never rendered again
(Cumulus re-renders output that still holds ``{...}``, so a value could
inject a template); an unknown function or ``dateFormat`` token is an error,
not passed through; and the result must be a clean relative path (no ``.``
or ``..`` segment, no control character), so no value can move a file out
of its url_path.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from cnm_ingest.cnm.normalize import FILE_TYPES, date_time
from cnm_ingest.errors import CnmValidationError, ConfigurationError

CONTEXT_KEYS = ("file", "granule", "cmrMetadata", "collection", "cnm")
MAX_TEMPLATE_CHARS = 1024
MAX_KEY_BYTES = 1024  # S3's limit on a key

_EXPRESSION = re.compile(r"{([^{}]+)}")
_CALL = re.compile(r"([^(]+)\(([^)]+)\)")
_PATH_PART = re.compile(r"([^.\[\]]+)|\[(\d+)\]")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _lookup(context: dict[str, Any], path: str) -> Any:
    """lodash ``get``: ``a.b[0].c``; None when any step is missing."""
    value: Any = context
    pos = 0
    path = path.strip()
    while pos < len(path):
        if path[pos] == ".":
            pos += 1
            continue
        m = _PATH_PART.match(path, pos)
        if m is None:
            return None
        pos = m.end()
        if m.group(1) is not None:
            if not isinstance(value, dict):
                return None
            value = value.get(m.group(1))
        else:
            index = int(m.group(2))
            if not isinstance(value, list) or index >= len(value):
                return None
            value = value[index]
    return value


def _is_path(arg: str, context: dict[str, Any]) -> bool:
    return re.split(r"[.\[]", arg, maxsplit=1)[0] in context


def _argument(arg: str, context: dict[str, Any]) -> Any:
    return _lookup(context, arg) if _is_path(arg, context) else arg


_ISO = re.compile(r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?([Zz]|([+-])(\d{2}):(\d{2}))", re.ASCII)


def _when(value: Any) -> datetime:
    """A date-time as JavaScript's ``new Date(value)`` reads the values Cumulus templates see."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        try:
            return datetime.fromtimestamp(value / 1000, tz=UTC)
        except (OverflowError, OSError, ValueError):
            pass
    elif isinstance(value, str):
        text = value.strip()
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text, re.ASCII):
            text += "T00:00:00Z"
        m = _ISO.fullmatch(date_time(text) or "")
        if m is not None:
            try:
                tz = (
                    UTC
                    if m[9] is None
                    else timezone((1 if m[9] == "+" else -1) * timedelta(hours=int(m[10]), minutes=int(m[11])))
                )
                micro = int((m[7] or "0")[:6].ljust(6, "0"))
                when = datetime(int(m[1]), int(m[2]), int(m[3]), int(m[4]), int(m[5]), min(int(m[6]), 59), micro, tz)
                return when.astimezone(UTC)
            except (ValueError, OverflowError):
                pass
    raise ConfigurationError(f"{str(value)[:80]!r} is not a date-time")


# moment.js format tokens we render (longest first); anything else alphabetic is an error.
_MOMENT = {
    "YYYY": lambda d: f"{d.year:04d}",
    "YY": lambda d: f"{d.year % 100:02d}",
    "MM": lambda d: f"{d.month:02d}",
    "M": lambda d: str(d.month),
    "DDDD": lambda d: f"{d.timetuple().tm_yday:03d}",
    "DDD": lambda d: str(d.timetuple().tm_yday),
    "DD": lambda d: f"{d.day:02d}",
    "D": lambda d: str(d.day),
    "HH": lambda d: f"{d.hour:02d}",
    "H": lambda d: str(d.hour),
    "mm": lambda d: f"{d.minute:02d}",
    "m": lambda d: str(d.minute),
    "ss": lambda d: f"{d.second:02d}",
    "s": lambda d: str(d.second),
    "SSS": lambda d: f"{d.microsecond // 1000:03d}",
    "X": lambda d: str(int(d.timestamp())),
    "x": lambda d: str(int(d.timestamp() * 1000)),
}
_MOMENT_TOKEN = re.compile(r"\[[^\]]*\]|" + "|".join(sorted(_MOMENT, key=len, reverse=True)) + r"|[A-Za-z]")


def date_format(when: datetime, fmt: str) -> str:
    def token(m: re.Match[str]) -> str:
        t = m.group(0)
        if t.startswith("["):
            return t[1:-1]
        if t in _MOMENT:
            return _MOMENT[t](when)
        raise ConfigurationError(f"dateFormat token {t!r} in {fmt!r} is not supported")

    return _MOMENT_TOKEN.sub(token, fmt)


def _js_substring(text: str, args: list[str]) -> str:
    def index(a: str) -> int:
        try:
            n = int(float(a))
        except ValueError:
            n = 0
        return min(max(n, 0), len(text))

    start = index(args[0]) if args else 0
    end = index(args[1]) if len(args) > 1 else len(text)
    return text[min(start, end) : max(start, end)]


def _extract_path(value: str) -> str:
    return posixpath.dirname(value) or "."


FUNCTIONS: dict[str, Callable[[Any, list[str]], str]] = {
    "extractYear": lambda v, a: str(_when(v).year),
    "extractMonth": lambda v, a: str(_when(v).month),
    "extractDate": lambda v, a: str(_when(v).day),
    "extractHour": lambda v, a: str(_when(v).hour),
    "dateFormat": lambda v, a: date_format(_when(v), a[0] if a else ""),
    "substring": lambda v, a: _js_substring(str(v), a),
    "extractPath": lambda v, a: _extract_path(str(v)),
}


def _scalar(value: Any, what: str) -> str:
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise ConfigurationError(f"{what} is not a text or number value")
    return value if isinstance(value, str) else str(value)


def _evaluate(expression: str, context: dict[str, Any], legacy: dict[str, str]) -> str:
    expression = expression.strip()
    if expression in legacy:
        return legacy[expression]
    call = _CALL.fullmatch(expression)
    if call is None:
        value = _lookup(context, expression)
        if value in (None, "", 0):
            raise ConfigurationError(f"cannot resolve {expression!r}")
        return _scalar(value, expression)
    name, args = call.group(1).strip(), re.split(r"\s*,\s*", call.group(2).strip())
    if name == "defaultTo":
        if len(args) != 2:
            raise ConfigurationError(f"defaultTo takes 2 arguments: {expression!r}")
        first = _argument(args[0], context)
        value = first if first not in (None, "", 0) else _argument(args[1], context)
        if value in (None, ""):
            raise ConfigurationError(f"cannot resolve {expression!r}")
        return _scalar(value, expression)
    fn = FUNCTIONS.get(name)
    if fn is None:
        raise ConfigurationError(f"url_path function {name!r} is not one of {sorted([*FUNCTIONS, 'defaultTo'])}")
    value = _argument(args[0], context)
    if value in (None, "", 0):
        raise ConfigurationError(f"cannot resolve {args[0]!r} in {expression!r}")
    return fn(value, args[1:])


def render(template: str, context: dict[str, Any], legacy: dict[str, str] | None = None) -> str:
    """Render ``template`` once; the result is a clean relative path (see :func:`clean_path`).

    A template the collection got wrong is a ConfigurationError; a value from
    the notification that would leave the url_path is a CnmValidationError.
    """
    if not isinstance(template, str) or len(template) > MAX_TEMPLATE_CHARS:
        raise ConfigurationError(f"url_path must be a string of at most {MAX_TEMPLATE_CHARS} characters")
    try:
        rendered = _EXPRESSION.sub(lambda m: _evaluate(m.group(1), context, legacy or {}), template)
    except ConfigurationError as exc:
        raise ConfigurationError(f"url_path {template[:200]!r} cannot be rendered: {exc}") from None
    return clean_path(rendered, template)


def clean_path(path: str, template: str = "") -> str:
    """``path`` without trailing/doubled ``/``; a leading ``/`` (an absolute path), an empty result,
    a ``.``/``..`` segment or a control character is refused."""
    segments = [s for s in path.split("/") if s]
    bad = [s for s in segments if s in (".", "..") or _CONTROL.search(s)]
    if bad or not segments or path.startswith("/") or "{" in path or "}" in path:
        raise CnmValidationError(
            f"url_path {template[:200]!r} renders to {path[:200]!r}, which is not a clean path under the url_path",
            "$.url_path",
        )
    return "/".join(segments)


def has_control(text: str) -> bool:
    """True when ``text`` has a control character (C0 or DEL)."""
    return _CONTROL.search(text) is not None


def object_key(prefix: str, name: str) -> str:
    """The staged key of file ``name`` under ``prefix``; a name that is not one path segment is refused."""
    if not isinstance(name, str) or not name or "/" in name or name in (".", "..") or _CONTROL.search(name):
        raise CnmValidationError(f"file name {str(name)[:200]!r} is not a plain file name", "$.product.files[].name")
    key = f"{prefix}/{name}" if prefix else name
    if len(key.encode("utf-8", "surrogatepass")) > MAX_KEY_BYTES:
        raise CnmValidationError(
            f"the staged key of {name[:100]!r} is over S3's {MAX_KEY_BYTES} bytes", "$.product.files[].name"
        )
    return key


# --- collection files: {regex, bucket, type, url_path} ---------------------------------------------


@dataclass(frozen=True)
class Placement:
    bucket: str
    prefix: str
    type: str


def file_spec(name: str, config: dict[str, Any]) -> dict[str, Any] | None:
    """The first collection ``files`` entry whose ``regex`` is found in ``name`` (Cumulus order), or None."""
    specs = config.get("files") or []
    if not isinstance(specs, list):
        raise ConfigurationError("collection files must be a list of {regex, bucket, type, url_path}")
    for spec in specs:
        if not isinstance(spec, dict) or not isinstance(spec.get("regex"), str):
            raise ConfigurationError(f"collection files entry {str(spec)[:200]} has no regex")
        try:
            if re.search(spec["regex"], name):
                return spec
        except re.error as exc:
            raise ConfigurationError(f"collection files regex {spec['regex']!r} is not valid: {exc}") from None
    return None


def place(
    file: dict[str, Any],
    granule: dict[str, Any],
    *,
    buckets: dict[str, Any],
    default_bucket: str,
    template: str,
    config: dict[str, Any],
    stack: str,
    extra: dict[str, Any] | None = None,
) -> Placement:
    """Where ``file`` is staged: bucket, key prefix and type.

    The collection ``files`` entry matching the file's name gives the bucket
    (a key of ``meta.buckets``), the type (when it is a CNM file type) and its own ``url_path``; a file no
    entry matches goes to ``default_bucket`` under the collection ``url_path``
    (``template``) with its CNM type.
    """
    spec = file_spec(file["name"], config) or {}
    bucket: str = default_bucket
    if spec.get("bucket"):
        entry = buckets.get(spec["bucket"]) if isinstance(buckets, dict) else None
        bucket = str(entry["name"]) if isinstance(entry, dict) and isinstance(entry.get("name"), str) else ""
        if not bucket:
            raise ConfigurationError(f"collection files bucket {spec['bucket']!r} is not in meta.buckets")
    name, version = granule.get("dataType") or "", granule.get("version")
    collection = {"name": name, "version": version or ""}
    context = {"file": file, "granule": granule, "collection": collection, **(extra or {})}
    legacy = {
        "stack": stack,
        "collection": f"{name}__{version}" if version else name,
        "collection_name": name,
        "collection_version": version or "",
        "granuleId": str(granule.get("granuleId", "")),
    }
    prefix = render(spec.get("url_path") or template, context, legacy)
    kind = str(spec["type"] if spec.get("type") in FILE_TYPES else file["type"])  # a CNM response only takes CNM types
    return Placement(bucket=bucket, prefix=prefix, type=kind)
