"""The store through PgBouncer in transaction pooling mode (Debian's pgbouncer): the multi-replica store
tests pass unchanged when every transaction may land on another server connection."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from engine.run_store import RunStore
from integrations.postgres import PostgresStore
from integrations.testing.postgres import PgBouncer, PostgresCluster
from tests.conftest import StoreFactory, missing_tool
from tests.engine import test_store


@pytest.fixture(scope="module")
def bouncer(postgres: PostgresCluster) -> Iterator[PgBouncer]:
    if not Path(PgBouncer.BINARY).exists():
        missing_tool(f"pgbouncer not found at {PgBouncer.BINARY}: apt-get install pgbouncer")
    bouncer = PgBouncer(postgres).start()
    yield bouncer
    bouncer.stop()


@pytest.fixture
def through_bouncer(postgres: PostgresCluster, bouncer: PgBouncer) -> Iterator[StoreFactory]:
    database = postgres.new_database().rsplit("/", 1)[1]
    opened: list[RunStore] = []

    def make(instance: str | None = None, **options: Any) -> RunStore:
        store = PostgresStore(bouncer.url(database), instance, migrate=options.pop("migrate", True), pool_size=4,
                              **options)
        opened.append(store)
        return store

    yield make
    for store in opened:
        store.close()


MULTI_REPLICA: list[Callable[[StoreFactory], None]] = [
    test_store.test_replicas_receiving_the_same_alert_start_one_run,
    test_store.test_replicas_racing_on_one_dedup_key_keep_every_alert_with_one_run,
    test_store.test_a_double_click_on_two_replicas_is_one_decision,
    test_store.test_a_replica_that_lost_its_lease_can_no_longer_write,
    test_store.test_a_change_in_flight_is_claimed_only_to_be_settled,
    test_store.test_two_replicas_claim_disjoint_outbox_messages_in_order,
    test_store.test_a_claimed_message_goes_to_no_one_else_until_released_or_lapsed,
    test_store.test_a_signed_request_is_accepted_once_per_window,
    test_store.test_an_engine_older_than_the_schema_serves_refuses_to_start,
]
ONE_STORE: list[Callable[[RunStore], None]] = [
    test_store.test_a_finished_run_absorbs_repeats_only_for_its_cooldown,
    test_store.test_a_webhooks_alerts_join_their_open_runs_in_one_write,
    test_store.test_outbox_retry_give_up_and_the_message_map,
    test_store.test_prune_deletes_old_finished_runs_and_keeps_the_audit_unless_asked,
]


@pytest.mark.parametrize("case", MULTI_REPLICA, ids=lambda f: f.__name__)
def test_multi_replica_semantics_through_pgbouncer(case: Callable[[StoreFactory], None],
                                                   through_bouncer: StoreFactory) -> None:
    case(through_bouncer)


@pytest.mark.parametrize("case", ONE_STORE, ids=lambda f: f.__name__)
def test_store_operations_through_pgbouncer(case: Callable[[RunStore], None], through_bouncer: StoreFactory) -> None:
    case(through_bouncer("test"))

