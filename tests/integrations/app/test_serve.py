"""`settle_heap`, which `runbook serve` calls once started: start-up's garbage is freed, the rest frozen."""

from __future__ import annotations

import gc
import weakref

from integrations.app.serve import settle_heap


class _Node:
    me: _Node | None = None


def test_settle_heap_frees_garbage_then_freezes_what_is_left() -> None:
    kept = [_Node() for _ in range(10)]
    cycle = _Node()
    cycle.me = cycle  # only the cyclic collector frees this
    gone = weakref.ref(cycle)
    del cycle
    before = gc.get_freeze_count()
    try:
        settle_heap()
        assert gone() is None, "garbage made before the freeze must be collected, not kept for good"
        assert gc.get_freeze_count() > before
        assert not any(obj is kept for obj in gc.get_objects()), "live start-up objects leave the generations"
    finally:
        gc.unfreeze()
