"""A 5,000-node, 150,000-pod cluster: loads quickly and answers node-scoped pod lists from indexes.

No timing assertions (benchmarks live in bench/); timings are printed for the record.
"""

from __future__ import annotations

import time

from kubernetes import client

from integrations.kubesim import SimulatedCluster, generate_cluster


def test_large_cluster_field_selected_pod_list() -> None:
    started = time.perf_counter()
    objects = generate_cluster(nodes=5000, pods_per_node=30, not_ready=["node-00042"])
    generated = time.perf_counter()
    sim = SimulatedCluster(objects=objects)
    loaded = time.perf_counter()
    del objects
    print(f"\ngenerate_cluster: {generated - started:.2f}s, load: {loaded - generated:.2f}s")
    assert sim.store.count(sim.table.lookup("pods")) == 150_000
    assert sim.store.count(sim.table.lookup("nodes")) == 5000
    with sim:
        api = sim.api_client()
        core = client.CoreV1Api(api)
        t0 = time.perf_counter()
        pods = core.list_pod_for_all_namespaces(field_selector="spec.nodeName=node-01234")
        t1 = time.perf_counter()
        assert len(pods.items) == 30
        assert {p.spec.node_name for p in pods.items} == {"node-01234"}
        namespace = pods.items[-1].metadata.namespace
        t2 = time.perf_counter()
        in_ns = core.list_namespaced_pod(namespace, field_selector="spec.nodeName=node-01234")
        t3 = time.perf_counter()
        assert 0 < len(in_ns.items) < 30 and {p.metadata.namespace for p in in_ns.items} == {namespace}
        down = core.list_pod_for_all_namespaces(field_selector="spec.nodeName=node-00042")
        assert len(down.items) == 30
        assert all(
            next(c.status for c in p.status.conditions if c.type == "Ready") == "False" for p in down.items
        )
        node = core.read_node("node-00042")
        assert next(c.status for c in node.status.conditions if c.type == "Ready") == "Unknown"
        page = core.list_pod_for_all_namespaces(limit=500)
        assert len(page.items) == 500 and page.metadata._continue
        print(
            f"pod list by node (all namespaces): {(t1 - t0) * 1000:.1f}ms, "
            f"(one namespace): {(t3 - t2) * 1000:.1f}ms"
        )
        api.close()
