"""The store interface's multi-process guarantees, on both backends (each test runs on SQLite and PostgreSQL).

Separate store objects on one database stand for separate replicas; races are run from real threads.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from engine.errors import SchemaError
from engine.records import Decision, RunStatus, StepRecord, StepStatus
from engine.run_store import OutboxMessage, RefusalLimits, RefusedRequest, RunStore
from engine.verdict import Proposal
from tests.conftest import StoreFactory


def new_run(store: RunStore, key: str | None = None) -> str:
    run_id, created = store.create_run("rb", "{}", {}, "alice", dedup_key=key, cooldown=60)
    assert created
    return run_id


def race(n: int, work: Callable[[int], Any]) -> list[Any]:
    """Run `work(i)` on n threads released at once; their results in order."""
    barrier = threading.Barrier(n)
    results: list[Any] = [None] * n

    def one(i: int) -> None:
        barrier.wait()
        results[i] = work(i)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return results


def test_replicas_receiving_the_same_alert_start_one_run(make_store: StoreFactory) -> None:
    replicas = [make_store(f"pod-{i}/1/x") for i in range(4)]
    for attempt in range(5):
        key = f"alert-{attempt}"
        results = race(4, lambda i, key=key: replicas[i].create_run("rb", "{}", {}, "am", dedup_key=key,  # type: ignore[misc]
                                                                      cooldown=60))
        assert sum(created for _, created in results) == 1
        assert len({run_id for run_id, _ in results}) == 1


def test_a_finished_run_absorbs_repeats_only_for_its_cooldown(store: RunStore) -> None:
    run_id = new_run(store, "k")
    assert store.create_run("rb", "{}", {}, "am", dedup_key="k", cooldown=60) == (run_id, False)
    assert store.claim(run_id, RunStatus.PENDING, RunStatus.SUCCEEDED)
    assert store.create_run("rb", "{}", {}, "am", dedup_key="k", cooldown=60) == (run_id, False)
    later, created = store.create_run("rb", "{}", {}, "am", dedup_key="k", cooldown=0)
    assert created and later != run_id and store.find_by_dedup_key("k") == later


VERDICTS = ("approved", "rejected", "approved", "rejected")


def test_a_double_click_on_two_replicas_is_one_decision(make_store: StoreFactory) -> None:
    a, b = make_store("pod-a/1/x"), make_store("pod-b/1/y")
    for attempt in range(5):
        run_id = new_run(a)
        assert a.claim(run_id, RunStatus.PENDING, RunStatus.AWAITING_APPROVAL, awaiting_step="fix")
        results = race(4, lambda i, run_id=run_id: (a, b)[i % 2].record_decision(  # type: ignore[misc]
            Decision(run_id, "fix", VERDICTS[i], f"user{i}", time.time())))
        assert sum(results) == 1, attempt
        decisions = b.decisions(run_id)
        assert len(decisions) == 1 and decisions[0].decision == VERDICTS[results.index(True)]


def test_a_replica_that_lost_its_lease_can_no_longer_write(make_store: StoreFactory) -> None:
    a, b = make_store("pod-a/1/x"), make_store("pod-b/1/y")
    run_id = new_run(a)
    assert a.claim(run_id, RunStatus.PENDING, RunStatus.RUNNING, lease=30)
    assert a.save_step(run_id, StepRecord(0, "look", "toy.get", StepStatus.SUCCEEDED), cursor=0)
    assert b.take_over() == []  # a's lease is valid
    assert a.heartbeat([run_id], lease=-1) == [run_id]  # still held: a heartbeat never shortens a lease
    assert b.take_over() == []
    assert a.claim(run_id, RunStatus.RUNNING, RunStatus.RUNNING, lease=-1)  # a stalls; its lease lapses
    assert b.take_over() == [run_id]
    assert not a.save_step(run_id, StepRecord(1, "late", "toy.get", StepStatus.SUCCEEDED), cursor=1)
    assert not a.update_run(run_id, status=RunStatus.SUCCEEDED)
    assert a.heartbeat([run_id], lease=30) == []
    assert b.save_step(run_id, StepRecord(1, "next", "toy.get", StepStatus.SUCCEEDED), cursor=1)
    assert b.heartbeat([run_id], lease=30) == [run_id]
    assert b.update_run(run_id, status=RunStatus.SUCCEEDED)
    run = b.get_run(run_id)
    assert run.status == RunStatus.SUCCEEDED and [s.id for s in run.steps] == ["look", "next"]
    assert ("engine", "run.taken_over") in [(e.actor, e.action) for e in b.audit_log(run_id)]


def test_the_same_process_reclaiming_holds_only_the_newest_epoch(make_store: StoreFactory) -> None:
    a = make_store("pod-a/1/x")
    other_thread_view = make_store("pod-a/1/x")  # same instance name, separate memory: a stale writer
    run_id = new_run(a)
    assert other_thread_view.claim(run_id, RunStatus.PENDING, RunStatus.RUNNING, lease=-1)
    assert a.take_over() == [run_id]
    assert not other_thread_view.save_step(run_id, StepRecord(0, "x", "toy.get", StepStatus.SUCCEEDED), cursor=0)
    assert a.save_step(run_id, StepRecord(0, "x", "toy.get", StepStatus.SUCCEEDED), cursor=0)


def test_a_change_in_flight_is_claimed_only_to_be_settled(make_store: StoreFactory) -> None:
    """Never carried on like other runs, never declared unknown blindly: claimed (fencing the old owner out)
    for the executor to re-read its target, and given back when that cannot decide yet."""
    a, b = make_store("pod-a/1/x"), make_store("pod-b/1/y")
    run_id = new_run(a)
    assert a.claim(run_id, RunStatus.PENDING, RunStatus.RUNNING, lease=-1)
    proposal = Proposal(id="fix", step="fix", action="toy.set", target="a", summary="set a", reason="x",
                        risk="low", status="approved")
    sending = StepRecord(0, "fix", "toy.set", StepStatus.RUNNING, proposal=proposal, started_at=time.time())
    assert a.save_step(run_id, sending, cursor=0)  # the intent, committed before the change is sent
    assert b.take_over() == []
    assert b.recover_interrupted() == []
    assert b.take_over_in_flight(lease=30) == [run_id]
    assert not a.update_run(run_id, status=RunStatus.SUCCEEDED)  # the old owner is fenced out
    assert a.take_over_in_flight(lease=30) == []  # b's lease is valid
    assert b.release(run_id) and not b.holds(run_id)
    assert not b.save_step(run_id, sending)  # given back: b writes no more until it claims again
    assert a.take_over_in_flight(lease=30) == [run_id]  # anyone may claim it again at once
    assert b.get_run(run_id).status == RunStatus.RUNNING
    assert "run.taken_over" not in [e.action for e in b.audit_log(run_id)]  # audited with the verdict


def test_two_replicas_claim_disjoint_outbox_messages_in_order(make_store: StoreFactory) -> None:
    a, b = make_store("pod-a/1/x"), make_store("pod-b/1/y")
    now = time.time()
    for run in ("r1", "r2", "r3"):
        a.outbox_put(run, [OutboxMessage("chat.postMessage", {"text": f"{run}-{i}"}, channel=f"C-{run}")
                           for i in range(3)], now)
    sent: list[str] = []
    for _ in range(12):
        for store in (a, b):
            for item in store.outbox_claim(time.time(), 30):
                sent.append(item.message.payload["text"])
                store.outbox_delivered(item)
    assert sorted(sent) == sorted(f"{r}-{i}" for r in ("r1", "r2", "r3") for i in range(3))  # each once
    for run in ("r1", "r2", "r3"):
        assert [t for t in sent if t.startswith(run)] == [f"{run}-{i}" for i in range(3)]
    assert a.outbox_pending() == 0


def test_a_claimed_message_goes_to_no_one_else_until_released_or_lapsed(make_store: StoreFactory) -> None:
    a, b = make_store("pod-a/1/x"), make_store("pod-b/1/y")
    now = time.time()
    a.outbox_put("r1", [OutboxMessage("chat.postMessage", {"text": "one"}, channel="C1")], now)
    a.outbox_put("r2", [OutboxMessage("chat.postMessage", {"text": "two"}, channel="C1")], now)
    first = a.outbox_claim(now, 30)
    assert [i.message.payload["text"] for i in first] == ["one", "two"]
    assert b.outbox_claim(now, 30) == []  # the messages and channel C1 are a's
    a.outbox_release()  # a graceful stop hands them over at once
    assert [i.message.payload["text"] for i in b.outbox_claim(now, 30)] == ["one", "two"]
    assert a.outbox_claim(now, 30) == []
    lapsed = a.outbox_claim(now + 31, 30)  # b crashed: after its claim lapses the messages go out (again)
    assert [i.message.payload["text"] for i in lapsed] == ["one", "two"]


def test_one_sender_per_channel(make_store: StoreFactory) -> None:
    a, b = make_store("pod-a/1/x"), make_store("pod-b/1/y")
    now = time.time()
    a.outbox_put("r1", [OutboxMessage("chat.postMessage", {"text": "a"}, channel="C1")], now)
    [item] = a.outbox_claim(now, 30)
    a.outbox_delivered(item)
    b.outbox_put("r2", [OutboxMessage("chat.postMessage", {"text": "b"}, channel="C1"),
                        OutboxMessage("chat.postMessage", {"text": "c"}, channel="C2")], now)
    b.outbox_put("r3", [OutboxMessage("chat.postMessage", {"text": "d"}, channel="C2")], now)
    assert [i.message.payload["text"] for i in b.outbox_claim(now, 30)] == ["d"]  # C1 is still a's to pace
    assert [i.message.payload["text"] for i in a.outbox_claim(now, 30)] == ["b"]


def test_outbox_retry_give_up_and_the_message_map(store: RunStore) -> None:
    now = time.time()
    store.outbox_put("r1", [OutboxMessage("chat.postMessage", {"channel": "C1", "text": "p"}, remember="parent"),
                            OutboxMessage("chat.postMessage", {"text": "reply"}, thread="parent")], now)
    [parent] = store.outbox_claim(now, 30)
    store.outbox_retry(parent, now + 5, "HTTP 500")
    assert store.outbox_claim(now, 30) == [] and store.outbox_next_at() == pytest.approx(now + 5)
    [parent] = store.outbox_claim(now + 5, 30)
    assert parent.attempts == 1 and parent.message.channel == "C1"
    store.outbox_delivered(parent, ("C1", "111.1"))
    assert store.chat_message("r1", "parent") == ("C1", "111.1")
    assert store.run_for_chat_message("C1", "111.1") == "r1"
    [reply] = store.outbox_claim(now + 5, 30)
    store.outbox_give_up(reply, "channel_not_found")
    assert store.outbox_failures() == [(reply.id, "chat.postMessage", "channel_not_found")]
    assert store.outbox_pending() == 0


def test_a_signed_request_is_accepted_once_per_window(make_store: StoreFactory) -> None:
    a, b = make_store("pod-a/1/x"), make_store("pod-b/1/y")
    now = time.time()
    assert a.first_seen("v0=abc", now, 600)
    assert not b.first_seen("v0=abc", now + 10, 600)  # replayed to the other replica
    assert b.first_seen("v0=abc", now + 601, 600)  # forgotten after the window (then refused as stale anyway)


def test_prune_deletes_old_finished_runs_and_keeps_the_audit_unless_asked(store: RunStore) -> None:
    old, active = new_run(store, "k-old"), new_run(store, "k-active")
    assert store.claim(old, RunStatus.PENDING, RunStatus.RUNNING)
    assert store.save_step(old, StepRecord(0, "look", "toy.get", StepStatus.SUCCEEDED), cursor=0)
    assert store.update_run(old, status=RunStatus.SUCCEEDED)
    store.attach_alert(old, "fp", "firing", {"labels": {}})
    store.outbox_put(old, [OutboxMessage("chat.postMessage", {"text": "x"}, channel="C1")], time.time())
    audit_before = len(store.audit_log())
    counts = store.prune(time.time() + 1)
    assert counts["runs"] == 1 and counts["steps"] == 1 and counts["alerts"] == 1 and counts["chat_outbox"] == 1
    assert [r.id for r in store.list_runs()] == [active]
    assert store.find_by_dedup_key("k-old") is None and store.find_by_dedup_key("k-active") == active
    assert len(store.audit_log()) == audit_before + 1  # kept, plus the prune itself
    counts = store.prune(time.time() + 1, audit=True)
    assert counts["audit"] == audit_before + 1
    assert [e.action for e in store.audit_log()] == ["store.pruned"]


def test_an_engine_older_than_the_schema_serves_refuses_to_start(make_store: StoreFactory) -> None:
    store = make_store("pod-a/1/x")
    state = store.schema()
    assert state.version >= 2 and state.min_engine == "0.2.0"
    with pytest.raises(SchemaError, match=r"engine is version 0\.1\.9.*only serves engines 0\.2\.0 or newer"):
        make_store("old/1/x", engine_version="0.1.9")
    make_store("new/1/x", engine_version="0.3.0")  # a newer replica on this schema is fine (rolling upgrade)


def test_a_webhooks_alerts_join_their_open_runs_in_one_write(store: RunStore) -> None:
    active, waiting, done = new_run(store, "k-active"), new_run(store, "k-waiting"), new_run(store, "k-done")
    assert store.claim(waiting, RunStatus.PENDING, RunStatus.AWAITING_APPROVAL, awaiting_step="fix")
    assert store.claim(done, RunStatus.PENDING, RunStatus.SUCCEEDED)
    assert store.attach_by_dedup_keys([], 60) == {}
    payload = [("k-active", "fp-a", "firing", {"n": 0}), ("k-none", "fp-n", "firing", {"n": 1}),
               ("k-waiting", "fp-w", "firing", {"n": 2}), ("k-done", "fp-d", "firing", {"n": 3}),
               ("k-active", "fp-a", "firing", {"n": 4})]  # the same alert twice in one payload: kept twice
    assert store.attach_by_dedup_keys(payload, 60) == {"k-active": active, "k-waiting": waiting, "k-done": done}
    assert [(a["fingerprint"], a["alert"]["n"]) for a in store.alerts(active)] == [("fp-a", 0), ("fp-a", 4)]
    assert [a["alert"]["n"] for a in store.alerts(waiting)] == [2]
    assert [a["alert"]["n"] for a in store.alerts(done)] == [3]  # finished within its cooldown: still absorbs
    assert store.attach_by_dedup_keys([("k-done", "fp-d", "firing", {"n": 5})], 0) == {}  # cooldown over
    assert [a["alert"]["n"] for a in store.alerts(done)] == [3]  # and the alert was not kept anywhere


def test_the_newest_open_run_of_a_key_gets_its_alerts_in_payload_order(store: RunStore) -> None:
    old = new_run(store, "k")
    assert store.claim(old, RunStatus.PENDING, RunStatus.SUCCEEDED)
    newer, created = store.create_run("rb", "{}", {}, "am", dedup_key="k", cooldown=0)
    assert created
    assert store.attach_by_dedup_keys([("k", f"fp{i}", "firing", {"i": i}) for i in range(150)], 60) == {"k": newer}
    assert [a["alert"]["i"] for a in store.alerts(newer)] == list(range(150))
    assert store.alerts(old) == []
    store.attach_alerts([])  # nothing to keep: no write, no error
    store.attach_alerts([(old, "fp", "resolved", {"i": -1}), (newer, "fp", "resolved", {"i": 150})])
    assert [(a["fingerprint"], a["status"]) for a in store.alerts(old)] == [("fp", "resolved")]
    assert store.alerts(newer)[-1]["alert"] == {"i": 150}


def test_replicas_racing_on_one_dedup_key_keep_every_alert_with_one_run(make_store: StoreFactory) -> None:
    """What each replica's intake does with the same new alert: look up and attach; on a miss start the run
    (the unique constraint decides) and attach there. One run, and every replica's alert on it."""
    replicas = [make_store(f"pod-{i}/1/x") for i in range(4)]
    for attempt in range(5):
        key = f"alert-{attempt}"

        def receive(i: int, key: str = key) -> tuple[str, bool]:
            alert = (key, "fp", "firing", {"replica": i})
            found = replicas[i].attach_by_dedup_keys([alert], 60)
            if key in found:
                return found[key], False
            run_id, created = replicas[i].create_run("rb", "{}", {}, "am", dedup_key=key, cooldown=60)
            replicas[i].attach_alerts([(run_id, *alert[1:])])
            return run_id, created

        results = race(4, receive)
        assert sum(created for _, created in results) == 1
        assert len({run_id for run_id, _ in results}) == 1
        run_id = results[0][0]
        assert sorted(a["alert"]["replica"] for a in replicas[0].alerts(run_id)) == [0, 1, 2, 3]


def test_listed_runs_come_newest_first_each_with_its_own_steps(store: RunStore) -> None:
    ids = [new_run(store) for _ in range(4)]
    other, _ = store.create_run("other", "{}", {}, "alice")
    for n, run_id in enumerate(ids[:3]):
        assert store.claim(run_id, RunStatus.PENDING, RunStatus.RUNNING)
        for idx in range(n + 1):
            assert store.save_step(run_id, StepRecord(idx, f"s{n}-{idx}", "toy.get", StepStatus.SUCCEEDED), cursor=idx)
    listed = store.list_runs("rb")
    assert [r.id for r in listed] == ids[::-1]
    assert [[s.id for s in r.steps] for r in listed] == [[], ["s2-0", "s2-1", "s2-2"], ["s1-0", "s1-1"], ["s0-0"]]
    assert [r.id for r in store.list_runs("rb", "running", limit=2)] == [ids[2], ids[1]]
    assert [r.id for r in store.list_runs(status="pending")] == [other, ids[3]]
    assert store.get_run(ids[1]).steps == listed[2].steps


def _refusals_counted(store: RunStore) -> int:
    """Refusals the audit log accounts for: a row each for the first, the repeats of a window, what the cap left out."""
    total = 0
    for entry in store.audit_log():
        if entry.action.endswith(".repeated"):
            total += entry.detail["repeats"]
        elif entry.action == "requests.refused.unaudited":
            total += entry.detail["refused"]
        elif entry.action.endswith(".refused"):
            total += 1
    return total


def test_refusals_are_audited_once_per_source_per_window_then_summarised(store: RunStore) -> None:
    limits = RefusalLimits(window=60, cap=10)
    firsts = [store.audit_refusal(RefusedRequest("alertmanager", "webhook.refused", source,
                                                 {"reason": "authentication"}), 1000 + i * 0.01, limits)
              for i, source in enumerate(["10.0.0.1 /hooks"] * 50 + ["10.0.0.2 /hooks"] * 3)]
    assert firsts == [True] + [False] * 49 + [True, False, False]
    rows = store.audit_log()
    assert [(r.action, r.detail["source"]) for r in rows] == [("webhook.refused", "10.0.0.1 /hooks"),
                                                             ("webhook.refused", "10.0.0.2 /hooks")]
    assert rows[0].detail["reason"] == "authentication"
    store.close_refusal_windows(1059, limits)  # not over yet
    assert len(store.audit_log()) == 2
    store.close_refusal_windows(1061, limits)
    repeated = {r.detail["source"]: r.detail["repeats"] for r in store.audit_log() if r.action.endswith(".repeated")}
    assert repeated == {"10.0.0.1 /hooks": 49, "10.0.0.2 /hooks": 2}
    assert _refusals_counted(store) == 53
    assert store.audit_refusal(RefusedRequest("alertmanager", "webhook.refused", "10.0.0.1 /hooks"), 1062, limits)


def test_replicas_share_one_refusal_budget(make_store: StoreFactory) -> None:
    a, b = make_store("pod-a/1/x"), make_store("pod-b/1/y")
    limits = RefusalLimits(window=60, cap=5)
    now = time.time()
    audited = race(8, lambda i: [(a, b)[i % 2].audit_refusal(
        RefusedRequest("slack", "slack.request.refused", f"10.0.{i}.{k} /slack/commands"), now, limits)
        for k in range(3)] + [(a, b)[i % 2].audit_refusal(
        RefusedRequest("slack", "slack.request.refused", "10.9.9.9 /slack/commands"), now, limits)])
    own_rows = sum(sum(flags) for flags in audited)
    assert own_rows == 5  # the cap, across both replicas
    assert len(a.audit_log()) == 5
    b.close_refusal_windows(now + 61, limits)  # ends the windows and the budget's: what the cap left out is one row
    unaudited = [r for r in a.audit_log() if r.action == "requests.refused.unaudited"]
    assert len(unaudited) == 1 and unaudited[0].detail["cap"] == 5
    assert _refusals_counted(a) == 8 * 4



def test_open_runs_are_the_unfinished_runs_of_a_runbook_newest_first_without_steps(store: RunStore) -> None:
    first, _ = store.create_run("rb", "{}", {"node": "a"}, "alice")
    second, _ = store.create_run("rb", "{}", {"node": "b"}, "bob")
    finished, _ = store.create_run("rb", "{}", {"node": "a"}, "carol")
    store.create_run("other", "{}", {"node": "a"}, "dave")
    assert store.claim(finished, RunStatus.PENDING, RunStatus.SUCCEEDED)
    assert store.claim(first, RunStatus.PENDING, RunStatus.RUNNING)
    runs = store.open_runs("rb")
    assert [(r.id, r.status, r.requester, r.params) for r in runs] == [
        (second, RunStatus.PENDING, "bob", {"node": "b"}), (first, RunStatus.RUNNING, "alice", {"node": "a"})]
    assert store.open_runs("rb", limit=1)[0].id == second
