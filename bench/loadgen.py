"""A bounded Alertmanager-webhook load generator (figure 4), run as its own process so that it does not
share the server's GIL: `python -m bench.loadgen URL TOKEN TOTAL CONCURRENCY PER_PAYLOAD NODES SECONDS`.

Posts version-4 payloads of `PER_PAYLOAD` KubeNodeNotReady-like alerts drawn from `NODES` node names
(so fingerprints repeat), `CONCURRENCY` requests in flight, until TOTAL alerts are accepted or SECONDS
pass. A 503 is retried after its Retry-After (capped at 1 s to stay bounded). Prints one JSON line.
"""

from __future__ import annotations

import asyncio
import json
import random
import sys
import time
from typing import Any

import httpx

from integrations.server.testing import alert, alert_payload


async def main(url: str, token: str, total: int, concurrency: int, per_payload: int, nodes: int,
               seconds: float) -> dict[str, Any]:
    rng = random.Random(7)
    payloads = []
    sent_nodes: set[str] = set()
    for _ in range(0, total, per_payload):
        names = [f"node-{rng.randrange(nodes):05d}" for _ in range(per_payload)]
        sent_nodes.update(names)
        payloads.append(alert_payload([alert("BenchNodeDown", {"node": n, "severity": "warning"}) for n in names]))
    queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    for payload in payloads:
        queue.put_nowait(payload)
    latencies: list[float] = []
    outcome = {"started": 0, "deduplicated": 0, "rejected": 0, "unmatched": 0, "retried_503": 0, "errors": 0}
    deadline = time.monotonic() + seconds
    headers = {"Authorization": f"Bearer {token}"}
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)

    async def worker(client: httpx.AsyncClient) -> None:
        while not queue.empty() and time.monotonic() < deadline:
            payload = queue.get_nowait()
            began = time.perf_counter()
            try:
                response = await client.post(url, json=payload, headers=headers)
            except httpx.HTTPError:
                outcome["errors"] += 1
                queue.put_nowait(payload)
                continue
            latencies.append((time.perf_counter() - began) * 1000)
            if response.status_code == 503:
                outcome["retried_503"] += 1
                await asyncio.sleep(min(float(response.headers.get("Retry-After", "1")), 1.0))
                queue.put_nowait(payload)  # Alertmanager retries the whole payload; handled ones dedup
                continue
            body = response.json()
            for key in ("started", "deduplicated", "rejected", "unmatched"):
                outcome[key] += len(body.get(key) or [])

    began = time.perf_counter()
    async with httpx.AsyncClient(limits=limits, timeout=30) as client:
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
    elapsed = time.perf_counter() - began
    return {"elapsed": elapsed, "latencies": latencies, "payloads": len(payloads), "left": queue.qsize(),
            "alerts_sent": len(payloads) * per_payload, "distinct_nodes": len(sent_nodes), **outcome}


if __name__ == "__main__":
    u, tok, tot, conc, per, nod, secs = sys.argv[1:8]
    result = asyncio.run(main(u, tok, int(tot), int(conc), int(per), int(nod), float(secs)))
    print(json.dumps(result))
