"""Typed settings from a config file and `RUNBOOK_*` environment variables, loaded once at start."""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator, model_validator

from engine.errors import SettingsError


class IdentityMapping(BaseModel):
    """The Kubernetes user and/or groups a Slack user, Slack user group or CLI name acts as.

    A person's entry needs a `user` (impersonation always names a user); a group's entry usually only
    adds `groups`, and may name a shared `user` for members without an entry of their own.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    user: str | None = Field(default=None, min_length=1, description="Kubernetes user to impersonate.")
    groups: tuple[str, ...] = Field(default=(), description="Kubernetes groups to impersonate with it.")

    @model_validator(mode="after")
    def _not_empty(self) -> IdentityMapping:
        if self.user is None and not self.groups:
            raise ValueError("an identity needs a user or groups")
        return self


class Settings(BaseModel):
    """Everything configurable. Environment variables win over the file: `RUNBOOK_<FIELD>` (upper case)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    runbook_path: tuple[str, ...] = Field(default=("runbooks",), description="Folders or files with runbooks.")
    db: str = Field(default=".runbook/runs.db", description="SQLite run store path.")
    db_max_bytes: int | None = Field(default=None, ge=65_536, description="Cap on the SQLite file's size: beyond it "
                                     "writes fail and requests answer 503 with the reason (the volume never fills).")
    database_url: SecretStr | None = Field(
        default=None, description="postgresql://user:password@host/db: keep runs in PostgreSQL (several replicas) "
        "instead of SQLite at `db`.")
    database_prepared_statements: bool = Field(
        default=False, description="Let PostgreSQL keep the plans of the statements a replica repeats (server-side "
        "prepared statements; about a fifth more webhooks per second). Only for a direct connection or a pooler that "
        "keeps them (PgBouncer 1.21+ with max_prepared_statements); off for PgBouncer before 1.21 in transaction mode.")
    redaction_key: SecretStr | None = Field(
        default=None, min_length=16, description="Key of the hashes in [REDACTED:<hash>] markers (16+ characters; "
        "the same on every replica). Default: a key the run store generates once.")
    replica_name: str | None = Field(default=None, max_length=200, pattern=r"^[^/\s]+$",
                                     description="This replica's name in run ownership (default: the host name).")
    run_lease: float = Field(default=10.0, ge=3, le=600, description="Seconds a server's claim on a run lasts "
                             "between heartbeats: a dead replica's runs move on after about this long.")
    change_landing_grace: float = Field(
        default=60.0, ge=0, le=3600, description="Seconds after a dead replica's step timed out that a change it "
        "sent may still reach the cluster (the API server's request timeout): until then an unchanged target is "
        "not yet reported `not applied`.")
    kubeconfig: str | None = Field(default=None, description="kubeconfig path; default: in-cluster or ~/.kube/config.")
    context: str | None = Field(default=None, description="kubeconfig context.")
    in_cluster: bool = Field(default=False, description="Use the pod's service account.")
    slack_bot_token: SecretStr | None = None
    slack_signing_secret: SecretStr | None = None
    slack_api_url: str | None = Field(default=None, description="Slack Web API base URL (proxies, tests).")
    slack_channel: str | None = Field(default=None, description="Default channel for runs.")
    severity_channels: dict[str, str] = Field(default_factory=dict, description="severity -> channel routing.")
    storm_window: float = Field(default=120.0, ge=0, le=3600, description="Seconds between runs of one runbook "
                                "that make them a storm: one channel message listing the targets (0: off).")
    chat_detail: Literal["digest", "steps"] = Field(
        default="digest", description="Run threads in chat: `digest` (the diagnosis, cards, decisions and steps "
        "that said, changed or failed) or `steps` (also one reply per finished step, a log; runs keep their own "
        "thread in a storm).")
    webhook_token: SecretStr | None = Field(default=None, description="Bearer token Alertmanager must send.")
    webhook_basic_auth: SecretStr | None = Field(default=None, description="'user:password' Alertmanager may send.")
    read_token: SecretStr | None = Field(default=None, description="Token for the run pages and run API (Bearer, or "
                                         "the Basic password); never the webhook token.")
    public_url: str | None = Field(default=None, pattern=r"^https?://[^\s]+$", description="Where people reach "
                                   "this server (e.g. https://runbook.example), for run page links in chat.")
    trusted_proxy_cidrs: tuple[str, ...] = Field(
        default=(), description="Addresses of authenticating proxies (oauth2-proxy) whose X-Forwarded-User "
        "header grants read access to the run pages.")
    workers: int = Field(default=4, ge=1, le=256)
    queue_size: int = Field(default=1000, ge=1)
    dedup_cooldown: float = Field(default=600.0, ge=0, description="Seconds a finished run still absorbs repeats.")
    runners: tuple[str, ...] = Field(default=(), description="Default: who may start runs from chat (empty: anyone).")
    approvers: tuple[str, ...] = Field(
        default=(), description="Default approvers when a runbook names none (empty: nobody may approve).")
    max_concurrent_changes: int = Field(default=3, ge=1, description="Approved changes executing at once.")
    max_changes_per_target_per_hour: int = Field(default=3, ge=1, description="Changes to one target per hour.")
    identities: dict[str, IdentityMapping] = Field(
        default_factory=dict,
        description="Slack user id, Slack user group id or CLI name -> the Kubernetes identity approvals by "
        "them execute as (impersonation). A plain string is a user name.")
    cluster_name: str | None = Field(
        default=None, description="The cluster this engine acts on; alerts naming another cluster never start runs.")
    cluster_label: str = Field(default="cluster", description="The alert label that names an alert's cluster.")
    max_body_bytes: int = Field(default=1_048_576, ge=1024)
    plugins: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description="Plug-in name -> its settings (prometheus, http, or an installed `runbook.actions` entry "
        "point, which is loaded only when named here).")
    user: str = Field(default_factory=lambda: os.environ.get("USER", "cli"), description="Your name on the CLI.")

    @field_validator("identities", mode="before")
    @classmethod
    def _plain_user_names(cls, value: Any) -> Any:
        """`U024BE7LH: alice@corp.example` is short for `{user: alice@corp.example}` (and works in env)."""
        if isinstance(value, dict):
            return {k: {"user": v} if isinstance(v, str) else v for k, v in value.items()}
        return value

    @field_validator("trusted_proxy_cidrs")
    @classmethod
    def _networks(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for entry in value:
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError:
                raise ValueError(f"{entry!r} is not an address or CIDR block (e.g. 10.0.0.0/8)") from None
        return value

    @model_validator(mode="after")
    def _read_token_is_its_own(self) -> Settings:
        """Whoever can send alerts must not thereby read every run (and the other way round)."""
        if self.read_token is not None and self.webhook_token is not None and \
                self.read_token.get_secret_value() == self.webhook_token.get_secret_value():
            raise ValueError("read_token must differ from webhook_token")
        return self

    @classmethod
    def load(cls, config: str | Path | None = None, environ: Mapping[str, str] | None = None) -> Settings:
        """Settings from `config` (YAML) overlaid with RUNBOOK_* variables; SettingsError names a bad key."""
        environ = os.environ if environ is None else environ
        config = config or environ.get("RUNBOOK_CONFIG")
        data = {**(_read_config(config) if config else {}), **_from_environ(cls.model_fields, environ)}
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            first = exc.errors(include_url=False)
            problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in first)
            raise SettingsError(f"bad setting: {problems} (file {config or '-'} or RUNBOOK_* variables)") from None


def _read_config(config: str | Path) -> dict[str, Any]:
    try:
        loaded = yaml.safe_load(Path(config).read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise SettingsError(f"cannot read config file {config}: {exc}") from exc
    if not isinstance(loaded, dict):
        raise SettingsError(f"config file {config} must hold a mapping of settings")
    return loaded


def _from_environ(fields: Mapping[str, Any], environ: Mapping[str, str]) -> dict[str, Any]:
    """RUNBOOK_<NAME> variables: comma lists for tuple fields, `k=v,k=v` for dict fields."""
    data: dict[str, Any] = {}
    for name, field in fields.items():
        value = environ.get(f"RUNBOOK_{name.upper()}")
        if value is None:
            continue
        kind = str(field.annotation) if field.annotation is not None else ""
        if "tuple" in kind:
            data[name] = [v.strip() for v in value.split(",") if v.strip()]
        elif "dict" in kind:
            data[name] = dict(p.split("=", 1) for p in value.split(",") if "=" in p)
        else:
            data[name] = value
    return data
