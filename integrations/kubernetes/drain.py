"""`k8s.node.drain`: `kubectl drain --ignore-daemonsets`, with the safety checks an incident needs.

Draining is refused outright when it would leave too little schedulable capacity (draining a node in
a half-dead cluster turns a partial outage into a full one). Otherwise: cordon, evict through the
Eviction API so PodDisruptionBudgets are honoured (a refusal names the budget and is retried until
the timeout), skip DaemonSet and mirror pods, refuse un-owned pods unless forced, then wait for the
evicted pods to go. Under dry-run every eviction is sent with `dryRun=All`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from engine.actions import ActionArgs, ActionContext, ActionKind, action
from engine.errors import PermanentError, TransientError
from engine.verdict import Change
from integrations.kubernetes.base import KubeActions
from integrations.kubernetes.client import PATCH_TYPES, Kube
from integrations.kubernetes.errors import EvictionBlocked
from integrations.kubernetes.nodepods import PodInfo, classify_pod, covering_pdbs, pods_on_node
from integrations.kubernetes.nodes import cluster_view, ready_status
from integrations.kubernetes.objects import meta, name_of, path, ref
from integrations.kubernetes.once import Sent, deletion_reading, patch_spec, send_once
from integrations.kubernetes.permissions import NODE_GET, NODE_LIST, NODE_PATCH, perm
from integrations.kubernetes.remediations import request_record

R = ActionKind.REMEDIATE

RETRY_BLOCKED_SECONDS = 5.0
POLL_SECONDS = 1.0


class DrainArgs(ActionArgs):
    node: str
    force: bool = False
    delete_emptydir_data: bool = False
    timeout_seconds: int = 300
    min_schedulable_share: float = 0.5
    grace_period_seconds: int | None = None


def plan_drain(pods: list[dict[str, Any]], args: DrainArgs) -> tuple[list[PodInfo], list[dict[str, str]], list[str]]:
    """(to evict, skipped with reasons, refusals): kubectl's filters, in its order."""
    evict: list[PodInfo] = []
    skipped: list[dict[str, str]] = []
    refusals: list[str] = []
    for pod in pods:
        info = classify_pod(pod)
        if info.owner_kind == "DaemonSet":
            skipped.append({"pod": info.ref, "reason": "DaemonSet pod (ignored)"})
        elif info.owner_kind == "Mirror":
            skipped.append({"pod": info.ref, "reason": "mirror (static) pod"})
        elif info.finished:
            skipped.append({"pod": info.ref, "reason": f"already {info.phase}"})
        elif info.terminating:
            skipped.append({"pod": info.ref, "reason": "already terminating"})
        elif info.owner_kind == "None" and not args.force:
            refusals.append(f"{info.ref} has no controller (force deletes it for good)")
        elif info.emptydir and not args.delete_emptydir_data:
            refusals.append(f"{info.ref} uses emptyDir (delete_emptydir_data loses that data)")
        else:
            evict.append(info)
    return evict, skipped, refusals


def _check_capacity(nodes: list[dict[str, Any]], args: DrainArgs) -> float:
    """The schedulable share left without this node; refuses when it is below the minimum."""
    view = cluster_view(nodes, args.node)
    share = float(view["schedulable_share_after_cordon"])
    if share < args.min_schedulable_share:
        raise PermanentError(
            f"refusing to drain {args.node}: only {view['schedulable_nodes']} of {view['nodes_total']} nodes are "
            f"schedulable and {share:.0%} would remain (minimum {args.min_schedulable_share:.0%}); "
            f"{view['not_ready_count']} nodes are NotReady: fix capacity first"
        )
    return share


def _cordon(kube: Kube, ctx: ActionContext, node: str) -> None:
    body, sent = patch_spec(kube, ctx, path("nodes", node), f"Node {node}", {"unschedulable": True})
    ctx.change(Change(verb="patch", target=f"Node {node}", dry_run=ctx.dry_run, outcome=sent.outcome,
                      request=request_record("PATCH", path("nodes", node), body, ctx.dry_run,
                                             PATCH_TYPES["strategic"]),
                      diff=("spec.unschedulable: false -> true", *sent.notes)))
    sent.raise_failure()


def _evict(kube: Kube, ctx: ActionContext, info: PodInfo, grace: int | None) -> Sent:
    """One eviction, sent at most once; after a lost answer the pod is re-read (gone or terminating: done)."""
    pod_path = path("pods", info.name, info.namespace)
    return send_once(ctx, f"Pod {info.ref}",
                     lambda pre: kube.evict(info.namespace, info.name, dry_run=ctx.dry_run, grace_period=grace,
                                            preconditions=pre),
                     lambda: deletion_reading(kube, pod_path, info.uid))


class DrainActions(KubeActions):
    def __init__(self, kube: Kube | None, sleep: Callable[[float], None] = time.sleep) -> None:
        super().__init__(kube)
        self._sleep = sleep

    @action("k8s.node.drain", kind=R, args=DrainArgs,
            permissions=(NODE_LIST, NODE_GET, NODE_PATCH, perm("pods", "list"), perm("pods", "create", sub="eviction"),
                         perm("poddisruptionbudgets", "list", "policy")))
    def drain(self, ctx: ActionContext, args: DrainArgs) -> dict[str, Any]:
        """Cordon and drain a node, honouring PodDisruptionBudgets; refuses when capacity would drop too low.

        Output: `node`, `evicted` ["ns/name"], `skipped` [{pod, reason}], `blocked` [{pod, budget, message}],
        `remaining` (evicted pods still on the node at the end), `waited` (bool), `schedulable_share_after`,
        `cordoned` (bool: a cordon was sent). Raises PermanentError when un-owned/emptyDir pods need
        force/delete_emptydir_data or capacity would fall below `min_schedulable_share`; TransientError when
        budgets still block evictions at the timeout.
        """
        kube = self.kube_for(ctx)
        nodes = kube.list(path("nodes"))
        node = next((n for n in nodes if name_of(n) == args.node), None) or kube.get(path("nodes", args.node))
        share = _check_capacity(nodes, args)
        pods = pods_on_node(kube, args.node)
        to_evict, skipped, refusals = plan_drain(pods, args)
        if refusals:
            raise PermanentError(f"cannot drain {args.node}: " + "; ".join(refusals))
        out: dict[str, Any] = {"node": args.node, "evicted": [], "skipped": skipped, "blocked": [],
                               "remaining": [], "waited": False, "schedulable_share_after": share, "cordoned": False}
        if not (node.get("spec") or {}).get("unschedulable"):
            _cordon(kube, ctx, args.node)
            out["cordoned"] = True
        pdbs = kube.list(path("poddisruptionbudgets")) if to_evict else []
        stop = time.monotonic() + min(float(args.timeout_seconds), ctx.remaining())
        pending = list(to_evict)
        while pending:
            pending = self._evict_round(kube, ctx, args, pending, pdbs, out)
            # Under dry-run a refusal is the answer: there is nothing to wait for.
            if not pending or ctx.dry_run or time.monotonic() + RETRY_BLOCKED_SECONDS >= stop:
                break
            self._sleep(RETRY_BLOCKED_SECONDS)
        if not ctx.dry_run and out["evicted"] and ready_status(node) == "True":
            out["remaining"] = self._wait_gone(kube, args.node, out["evicted"], pods, stop)
            out["waited"] = True
        if out["blocked"] and not ctx.dry_run:
            names = "; ".join(f"{b['pod']} (budget {b['budget']})" for b in out["blocked"])
            raise TransientError(f"drain of {args.node} incomplete: disruption budgets still block {names}",
                                 retry_after=RETRY_BLOCKED_SECONDS)
        return out

    def _evict_round(self, kube: Kube, ctx: ActionContext, args: DrainArgs, pending: list[PodInfo],
                     pdbs: list[dict[str, Any]], out: dict[str, Any]) -> list[PodInfo]:
        """One eviction per pending pod; records evictions and refusals in `out`, returns the refused."""
        still: list[PodInfo] = []
        blocked: list[dict[str, Any]] = []
        for info in pending:
            try:
                sent = _evict(kube, ctx, info, args.grace_period_seconds)
            except EvictionBlocked as exc:
                budgets = [ref(p) for p in covering_pdbs(info, pdbs)]
                blocked.append({"pod": info.ref, "budget": exc.budget or ", ".join(budgets) or None,
                                "message": str(exc)})
                still.append(info)
                continue
            out["evicted"].append(info.ref)
            ctx.change(Change(
                verb="evict", target=f"Pod {info.ref}", dry_run=ctx.dry_run,
                request=request_record("POST", path("pods", info.name, info.namespace, "eviction"),
                                       {"apiVersion": "policy/v1", "kind": "Eviction",
                                        "metadata": {"name": info.name, "namespace": info.namespace}},
                                       ctx.dry_run),
                diff=(f"evict {info.ref} ({info.owner_kind} {info.owner})", *sent.notes), outcome=sent.outcome,
            ))
            sent.raise_failure()
        out["blocked"] = blocked
        return still

    def _wait_gone(self, kube: Kube, node: str, evicted: list[str], before: list[dict[str, Any]],
                   stop: float) -> list[str]:
        """Poll until the evicted pods (same uid) left the node or time is up; returns those still there.

        Not done for a NotReady node: its kubelet cannot confirm termination, so pods would wait forever.
        """
        uids = {f"{meta(p).get('namespace')}/{name_of(p)}": meta(p).get("uid") for p in before}
        while True:
            current = {f"{meta(p).get('namespace')}/{name_of(p)}": meta(p).get("uid")
                       for p in pods_on_node(kube, node)}
            left = [r for r in evicted if r in current and current[r] == uids.get(r)]
            if not left or time.monotonic() + POLL_SECONDS >= stop:
                return left
            self._sleep(POLL_SECONDS)
