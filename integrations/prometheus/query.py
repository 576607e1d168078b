"""`prometheus.query`: an instant or range PromQL query, its samples as plain numbers.

Bounded like every input: the query text, the answer's size (read in a stream and cut off) and the number
of series kept; the time allowed is the source's timeout or what the step has left, whichever is less.
"""

from __future__ import annotations

import json
import math
from typing import TYPE_CHECKING, Any

from pydantic import Field, model_validator

from engine.actions import ActionArgs, ActionContext, ActionKind, action
from engine.errors import ForbiddenError, PermanentError, SettingsError, TransientError
from engine.model import Duration
from integrations.prometheus.settings import PrometheusSettings, Source

if TYPE_CHECKING:
    import httpx

MAX_BYTES = 4 * 1024 * 1024
MAX_SERIES = 500
TIME = r"^([0-9]+(\.[0-9]+)?|\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d))$"


class QueryArgs(ActionArgs):
    query: str = Field(min_length=1, max_length=10_000, description="PromQL.")
    source: str | None = Field(default=None, description="A named source from settings; default the first.")
    time: str | None = Field(default=None, pattern=TIME, description="Evaluation time (RFC 3339 or unix).")
    start: str | None = Field(default=None, pattern=TIME, description="Range start: makes it a range query.")
    end: str | None = Field(default=None, pattern=TIME)
    step: Duration | None = None

    @model_validator(mode="after")
    def _range(self) -> QueryArgs:
        ranged = (self.start, self.end, self.step)
        if any(v is not None for v in ranged) and not all(v is not None for v in ranged):
            raise ValueError("a range query needs start, end and step together")
        if self.time is not None and self.start is not None:
            raise ValueError("give time (instant query) or start/end/step (range query), not both")
        return self


def _number(text: Any) -> float | None:
    try:
        value = float(text)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def samples(data: dict[str, Any]) -> tuple[list[dict[str, Any]], float | None, bool]:
    """(`result` as [{labels, value}] or [{labels, values}], the first sample, whether series were cut)."""
    kind, raw = data.get("resultType"), data.get("result")
    if kind in ("scalar", "string"):
        value = _number(raw[1]) if isinstance(raw, list) and len(raw) == 2 else None
        return [{"labels": {}, "value": value}], value, False
    series = raw if isinstance(raw, list) else []
    out: list[dict[str, Any]] = []
    for item in series[:MAX_SERIES]:
        labels = item.get("metric") or {}
        if kind == "matrix":
            out.append({"labels": labels, "values": [[p[0], _number(p[1])] for p in item.get("values") or []]})
        else:
            out.append({"labels": labels, "value": _number((item.get("value") or [None, None])[1])})
    first = None
    if out:
        first = out[0]["values"][0][1] if kind == "matrix" and out[0]["values"] else out[0].get("value")
    return out, first, len(series) > MAX_SERIES


class PrometheusActions:
    def __init__(self, settings: PrometheusSettings, transport: httpx.BaseTransport | None = None) -> None:
        self.settings = settings
        self.transport = transport

    @action("prometheus.query", kind=ActionKind.DIAGNOSE, args=QueryArgs)
    def query(self, ctx: ActionContext, args: QueryArgs) -> dict[str, Any]:
        """Run a PromQL query against a configured Prometheus (instant, or range with start/end/step).

        Output: `result` ([{labels, value}] or, for ranges, [{labels, values: [[t, v]]}]), `value` (the
        first sample as a number, or null when there is none), `truncated` (more than 500 series).
        """
        try:
            source = self.settings.source(args.source)
            auth, headers = source.basic_auth(), source.headers()
        except SettingsError as exc:
            raise PermanentError(str(exc)) from None
        if args.start is not None:
            endpoint, params = "query_range", {"query": args.query, "start": args.start, "end": args.end,
                                               "step": f"{args.step:g}"}
        else:
            endpoint, params = "query", {"query": args.query, **({"time": args.time} if args.time else {})}
        timeout = min(source.timeout, max(0.1, ctx.remaining()))
        data = self._get(source, f"/api/v1/{endpoint}", params, timeout, (auth, headers))
        result, value, truncated = samples(data)
        return {"result": result, "value": value, "truncated": truncated, "source": source.name}

    def _get(self, source: Source, api_path: str, params: dict[str, Any], timeout: float,
             credentials: tuple[tuple[str, str] | None, dict[str, str]]) -> dict[str, Any]:
        import httpx  # here, not at module level: httpx pulls in its CLI (rich, click: ~10 MB) on import
        url = source.url.rstrip("/") + api_path
        auth, headers = credentials
        try:
            client = httpx.Client(timeout=timeout, verify=source.ca_file or True, auth=auth, headers=headers,
                                  transport=self.transport, follow_redirects=False)
            with client, client.stream("GET", url, params=params) as response:
                body = _read_bounded(response)
        except httpx.TimeoutException as exc:
            raise TransientError(f"Prometheus {source.name} did not answer within {timeout:g}s") from exc
        except httpx.TransportError as exc:
            raise TransientError(f"cannot reach Prometheus {source.name} at {source.url}: {exc}") from exc
        return _answer(source, response.status_code, body)


def _read_bounded(response: httpx.Response) -> bytes:
    chunks, size = [], 0
    for chunk in response.iter_bytes():
        size += len(chunk)
        if size > MAX_BYTES:
            raise PermanentError(f"the Prometheus answer is larger than {MAX_BYTES // 1024 // 1024} MiB: narrow "
                                 "the query (fewer series, a shorter range or a larger step)")
        chunks.append(chunk)
    return b"".join(chunks)


def _answer(source: Source, status: int, body: bytes) -> dict[str, Any]:
    try:
        document = json.loads(body)
    except ValueError:
        document = {}
    if status in (401, 403):
        raise ForbiddenError(f"Prometheus {source.name} refused the credentials (HTTP {status})")
    if status == 200 and document.get("status") == "success":
        data = document.get("data")
        return data if isinstance(data, dict) else {}
    reason = document.get("error") or body[:200].decode("utf-8", errors="replace")
    if status in (400, 422):
        raise PermanentError(f"Prometheus {source.name} rejected the query: {reason}")
    raise TransientError(f"Prometheus {source.name} answered HTTP {status}: {reason}")
