"""``SimulatedCluster``: the public face of kubesim (store + API + HTTP server + faults)."""

from __future__ import annotations

import base64
from collections import Counter
from collections.abc import Iterable, Mapping
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any

import yaml

from .api import ApiHandler
from .crds import register_crd, unservable
from .defaults import apply_defaults
from .faults import Faults
from .kubelet import ImageBehaviours
from .lifecycle import DeleteOptions
from .objects import Clock, clone, format_time, new_uid, use_clock
from .rbac import Authorizer
from .request import UserInfo
from .resources import ResourceTable, ResourceType
from .scenario import ScenarioError, parse_scenario, scenario_now, where_of
from .selectors import FieldSelector, LabelSelector
from .server import HTTPServerThread, RequestLog
from .store import Store
from .tls import Certificate, self_signed

SYSTEM_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
CRD_API_VERSION = "apiextensions.k8s.io/v1"


class SimulatedCluster:
    """A stateful fake Kubernetes API server over real HTTP on 127.0.0.1.

    ``objects`` are taken over by the cluster: it never mutates them in place, but callers must
    not mutate them afterwards either (sub-structures may be shared, copy-on-write).
    """

    def __init__(
        self,
        objects: Iterable[dict] = (),
        port: int = 0,
        host: str = "127.0.0.1",
        rbac: bool = False,
        tokens: Mapping[str, str | UserInfo] | None = None,
        seed: int = 0,
        tls: bool = False,
        now: datetime | None = None,
        behaviours: ImageBehaviours | None = None,
    ) -> None:
        self.host = host
        self.clock = Clock.starting_at(now)
        self.tls = tls
        self._cert: Certificate | None = None
        self._requested_port = port
        self.table = ResourceTable()
        self.store = Store()
        self.faults = Faults(seed)
        self.authorizer = Authorizer(self.store, self.table, rbac, {"admin-token": "admin", **(tokens or {})})
        self.api = ApiHandler(
            self.store, self.table, self.authorizer, lambda: f"{self.host}:{self.port}", seed, behaviours
        )
        self._log = RequestLog()
        self._http: HTTPServerThread | None = None
        self.load(objects)

    @classmethod
    def from_files(cls, paths: Iterable[str | Path], **kwargs: Any) -> SimulatedCluster:
        """Load scenario files as written. A `# kubesim-now:` header starts the cluster's clock at that
        instant (served in every `Date` header), instead of shifting timestamps to the real clock, so
        that cron schedules and ages read exactly as the scenario's author saw them. `# kubesim-image:`
        lines say how new pods of an image behave (see kubelet.py)."""
        objects: list[dict] = []
        pinned: datetime | None = None
        behaviours = ImageBehaviours()
        for path in paths:
            text = Path(path).read_text(encoding="utf-8")
            pinned = pinned or scenario_now(text)
            behaviours = behaviours.merged(ImageBehaviours.from_text(text, str(path)))
            objects.extend(parse_scenario(text, str(path), shift=False))
        kwargs.setdefault("now", pinned)
        kwargs.setdefault("behaviours", behaviours)
        return cls(objects=objects, **kwargs)

    # -- loading -----------------------------------------------------------------------------
    def _prepare(self, obj: dict) -> tuple[ResourceType, dict]:
        rt = self.table.for_object(obj)
        if rt is None:
            raise unservable(self.table, obj)
        meta = dict(obj.get("metadata") or {})
        if not meta.get("name"):
            where = where_of(obj)
            raise ScenarioError(f"{where + ': ' if where else ''}{rt.kind} without metadata.name")
        if rt.namespaced:
            meta.setdefault("namespace", "default")
        else:
            meta.pop("namespace", None)
        if not meta.get("uid"):
            meta["uid"] = new_uid()
        if not meta.get("creationTimestamp"):
            meta["creationTimestamp"] = self._now
        return rt, apply_defaults({**obj, "metadata": meta})

    def load(self, objects: Iterable[dict]) -> int:
        """Bulk-load objects (no watch events); creates any namespace they reference."""
        use_clock(self.clock)
        self._now = format_time(self.clock.now())
        objects = list(objects)
        for obj in objects:
            if obj.get("kind") == "CustomResourceDefinition" and obj.get("apiVersion") == CRD_API_VERSION:
                register_crd(self.table, obj)
        prepared = [self._prepare(obj) for obj in objects]
        ns_rt = self.table.lookup("namespaces")
        wanted = set(SYSTEM_NAMESPACES)
        wanted.update(o["metadata"]["namespace"] for rt, o in prepared if rt.namespaced)
        wanted.difference_update(o["metadata"]["name"] for rt, o in prepared if rt is ns_rt)
        wanted.difference_update(o["metadata"]["name"] for o in self.store.list(ns_rt)[0])
        born = min((o["metadata"]["creationTimestamp"] for _, o in prepared), default=self._now)
        extra = [
            self._prepare(
                {
                    "apiVersion": "v1",
                    "kind": "Namespace",
                    "metadata": {
                        "name": ns,
                        "labels": {"kubernetes.io/metadata.name": ns},
                        "creationTimestamp": born,
                    },
                    "spec": {"finalizers": ["kubernetes"]},
                    "status": {"phase": "Active"},
                }
            )
            for ns in sorted(wanted)
        ]
        count = self.store.load(extra + prepared)
        self.api.controllers.skip_loaded()
        return count

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> SimulatedCluster:
        if self._http is None:
            self.api.stopping.clear()
            context = None
            if self.tls:
                self._cert = self._cert or self_signed(self.host)
                context = self._cert.server_context()
            self._http = HTTPServerThread(
                self.host, self._requested_port, self.api, self.faults, self._log, self.clock, context
            )
            self._http.start()
        return self

    def stop(self) -> None:
        if self._http is not None:
            self.api.stopping.set()
            self._http.stop()
            self._http = None

    def __enter__(self) -> SimulatedCluster:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._http is None:
            raise RuntimeError("SimulatedCluster is not started")
        return self._http.port

    @property
    def url(self) -> str:
        scheme = "https" if self.tls else "http"
        return f"{scheme}://{self.host}:{self.port}"

    def write_kubeconfig(
        self, path: str | Path, user: str = "admin", token: str = "admin-token", namespace: str = "default"
    ) -> Path:
        """Write a kubeconfig (cluster + context + token user) pointing at this server."""
        cluster: dict[str, Any] = {"server": self.url}
        if self._cert is not None:
            cluster["certificate-authority-data"] = base64.b64encode(self._cert.pem).decode()
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "kubesim", "cluster": cluster}],
            "users": [{"name": user, "user": {"token": token}}],
            "contexts": [
                {"name": "kubesim", "context": {"cluster": "kubesim", "user": user, "namespace": namespace}}
            ],
            "current-context": "kubesim",
            "preferences": {},
        }
        p = Path(path)
        p.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
        return p

    def api_client(self, token: str = "admin-token") -> Any:
        """A configured ``kubernetes.client.ApiClient`` (imported lazily: optional dependency)."""
        from kubernetes import client

        cfg = client.Configuration()
        cfg.host = self.url
        cfg.api_key = {"authorization": token}
        cfg.api_key_prefix = {"authorization": "Bearer"}
        if self._cert is not None:
            cfg.ssl_ca_cert = str(self._cert.cert)
        return client.ApiClient(cfg)

    # -- request accounting ------------------------------------------------------------------
    @property
    def request_count(self) -> int:
        return self._log.total

    @property
    def requests(self) -> Counter[tuple[str, str]]:
        return Counter(self._log.counter)

    def reset_requests(self) -> None:
        self._log.reset()

    # -- direct store access -----------------------------------------------------------------
    def get(self, kind: str, name: str, namespace: str | None = None) -> dict | None:
        rt = self.table.lookup(kind)
        obj = self.store.get(rt, namespace or ("default" if rt.namespaced else None), name)
        return clone(obj) if obj is not None else None

    def list(
        self,
        kind: str,
        namespace: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
    ) -> list[dict]:
        rt = self.table.lookup(kind)
        items = self.store.list(
            rt, namespace, LabelSelector.parse(label_selector), FieldSelector.parse(field_selector)
        )[0]
        return [clone(o) for o in items]

    def apply(self, obj: dict) -> dict:
        """Put/replace an object directly (status included), emitting a watch event. Unlike `load`, this is
        a write: the controllers react to it before the next API request is answered."""
        use_clock(self.clock)
        self._now = format_time(self.clock.now())
        rt, prepared = self._prepare(clone(obj))
        current = self.store.get(rt, prepared["metadata"].get("namespace"), prepared["metadata"]["name"])
        if current is not None and not (obj.get("metadata") or {}).get("uid"):
            prepared["metadata"]["uid"] = current["metadata"]["uid"]
            prepared["metadata"]["creationTimestamp"] = current["metadata"].get("creationTimestamp")
        with self.store.lock:
            stored = self.store.put(rt, prepared)
            if rt.key == "nodes":
                self.api.lifecycle.node_updated(current, stored)
        return clone(stored)

    def delete(
        self, kind: str, name: str, namespace: str | None = None, grace_period: int | None = None
    ) -> None:
        """Delete through the API semantics (terminating pods, cascades) without HTTP."""
        use_clock(self.clock)
        rt = self.table.lookup(kind)
        self.api.lifecycle.delete(
            rt,
            namespace or ("default" if rt.namespaced else None),
            name,
            DeleteOptions(grace_period=grace_period),
        )
        self.api.controllers.settle()
