"""A bounded Alertmanager-webhook load generator (figure 4), run as its own process so that it does not
share the server's GIL: `python -m bench.loadgen URL TOKEN TOTAL CONCURRENCY PER_PAYLOAD NODES SECONDS`.

Posts version-4 payloads of `PER_PAYLOAD` KubeNodeNotReady-like alerts drawn from `NODES` node names, an
alert storm: half the alerts repeat an earlier fingerprint, half carry a new `instance` label (a new
fingerprint for the same node, as scrapes from several Prometheus replicas do), so the dedup identities are
the nodes. `CONCURRENCY` requests in flight, until TOTAL alerts are accepted or SECONDS pass. A 503 is
retried after its Retry-After (capped at 1 s to stay bounded). Prints one JSON line.
"""

from __future__ import annotations

import asyncio
import json
import random
import sys
import time
from typing import Any
from urllib.parse import urlsplit

from integrations.testing.server import alert, alert_payload


async def main(url: str, token: str, total: int, concurrency: int, per_payload: int, nodes: int,
               seconds: float) -> dict[str, Any]:
    rng = random.Random(7)
    payloads = []
    sent_nodes: set[str] = set()
    for _ in range(0, total, per_payload):
        names = [f"node-{rng.randrange(nodes):05d}" for _ in range(per_payload)]
        sent_nodes.update(names)
        payloads.append(alert_payload([
            alert("BenchNodeDown", {"node": n, "severity": "warning",
                                    **({"instance": f"10.0.{rng.randrange(256)}.{rng.randrange(256)}:9100"}
                                       if rng.random() < 0.5 else {})})
            for n in names]))
    host, port, target = _split(url)
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    for payload in payloads:
        queue.put_nowait(_request(host, target, token, payload))
    latencies: list[float] = []
    outcome = {"started": 0, "deduplicated": 0, "rejected": 0, "unmatched": 0, "retried_503": 0, "errors": 0}
    deadline = time.monotonic() + seconds

    async def worker() -> None:
        # Raw keep-alive HTTP/1.1, like wrk: a client library would spend more CPU than the server under
        # test on these two cores.
        reader, writer = await asyncio.open_connection(host, port)
        try:
            while not queue.empty() and time.monotonic() < deadline:
                request = queue.get_nowait()
                began = time.perf_counter()
                writer.write(request)
                try:
                    status, headers, body = await _response(reader)
                except (OSError, asyncio.IncompleteReadError, ValueError):
                    outcome["errors"] += 1
                    queue.put_nowait(request)
                    writer.close()
                    reader, writer = await asyncio.open_connection(host, port)
                    continue
                latencies.append((time.perf_counter() - began) * 1000)
                if status == 503:
                    outcome["retried_503"] += 1
                    await asyncio.sleep(min(float(headers.get("retry-after", "1")), 1.0))
                    queue.put_nowait(request)  # Alertmanager retries the whole payload; handled ones dedup
                    continue
                answer = json.loads(body)
                for key in ("started", "deduplicated", "rejected", "unmatched"):
                    outcome[key] += len(answer.get(key) or [])
        finally:
            writer.close()

    began = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - began
    return {"elapsed": elapsed, "latencies": latencies, "payloads": len(payloads), "left": queue.qsize(),
            "alerts_sent": len(payloads) * per_payload, "distinct_nodes": len(sent_nodes), **outcome}


def _split(url: str) -> tuple[str, int, str]:
    parts = urlsplit(url)
    return parts.hostname or "127.0.0.1", parts.port or 80, parts.path or "/"


def _request(host: str, target: str, token: str, payload: dict[str, Any]) -> bytes:
    body = json.dumps(payload).encode()
    head = (f"POST {target} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n"
            f"Content-Type: application/json\r\nUser-Agent: Alertmanager/0.25.0\r\n"
            f"Content-Length: {len(body)}\r\n\r\n")
    return head.encode() + body


async def _response(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], bytes]:
    head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
    status = int(head[0].split(" ")[1])
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in head[1:] if line)}
    return status, headers, await reader.readexactly(int(headers.get("content-length", "0")))


if __name__ == "__main__":
    u, tok, tot, conc, per, nod, secs = sys.argv[1:8]
    result = asyncio.run(main(u, tok, int(tot), int(conc), int(per), int(nod), float(secs)))
    print(json.dumps(result))
