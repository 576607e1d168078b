"""A webhook's alerts in one statement each: on a database server a webhook waits for its round trips,
not for its rows, so the lookup and the attach travel together.

Both statements run alone in their own (autocommit) transaction and skip the WAL flush at commit, as
SQLite's unsynced attach does: `set_config(..., true)` is transaction-local, so it holds for exactly this
statement's commit and nothing outlives it on the connection (a transaction-mode pooler may hand the
connection to anyone next). Arrays carry the rows, so a payload of any size is one statement; they
travel in binary (`%b`): as text, escaping every quote of the alerts' JSON cost more than the round trip.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from engine.sqlstore.codec import dumps

# evaluated by the INSERT that needs it (volatile, so never folded away); nothing inserted, nothing to sync
_UNSYNCED = "unsynced AS (SELECT set_config('synchronous_commit', 'off', true))"
_ROWS = ("unnest(%(keys)b::text[], %(fingerprints)b::text[], %(statuses)b::text[], %(payloads)b::text[])"
         " WITH ORDINALITY AS a (key, fingerprint, status, payload, n)")

# The newest run of each key that still absorbs repeats (the rule of `create_run`); the alerts of those keys
# are inserted in payload order; the keys found are the answer. One snapshot: lookup and insert agree.
ATTACH_BY_KEYS = f"""
WITH found AS (
    SELECT DISTINCT ON (dedup_key) dedup_key, id FROM runs
    WHERE dedup_key = ANY(%(keys)b::text[]) AND (status = ANY(%(active)b::text[]) OR finished_at > %(since)s)
    ORDER BY dedup_key, created_at DESC),
{_UNSYNCED},
kept AS (
    INSERT INTO alerts (run_id, fingerprint, status, received_at, payload)
    SELECT found.id, a.fingerprint, a.status, %(now)s, a.payload
    FROM {_ROWS} JOIN found ON found.dedup_key = a.key CROSS JOIN unsynced
    ORDER BY a.n)
SELECT dedup_key, id FROM found"""

# Rows whose run is known: the same insert, the run id riding in the `keys` column.
ATTACH = f"""
WITH {_UNSYNCED}
INSERT INTO alerts (run_id, fingerprint, status, received_at, payload)
SELECT a.key, a.fingerprint, a.status, %(now)s, a.payload FROM {_ROWS} CROSS JOIN unsynced ORDER BY a.n"""


def columns(rows: Iterable[tuple[str, str, str, dict[str, Any]]]) -> dict[str, Any]:
    """(key or run id, fingerprint, status, alert) rows as the statements' four arrays, stamped now."""
    keys, fingerprints, statuses, payloads = [], [], [], []
    for key, fingerprint, status, payload in rows:
        keys.append(key)
        fingerprints.append(fingerprint)
        statuses.append(status)
        payloads.append(dumps(payload))
    return {"keys": keys, "fingerprints": fingerprints, "statuses": statuses, "payloads": payloads,
            "now": time.time()}
