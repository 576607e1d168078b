"""Typed settings from a config file and `RUNBOOK_*` environment variables, loaded once at start."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

from engine.errors import SettingsError


class Settings(BaseModel):
    """Everything configurable. Environment variables win over the file: `RUNBOOK_<FIELD>` (upper case)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    runbook_path: tuple[str, ...] = Field(default=("runbooks",), description="Folders or files with runbooks.")
    db: str = Field(default=".runbook/runs.db", description="SQLite run store path.")
    kubeconfig: str | None = Field(default=None, description="kubeconfig path; default: in-cluster or ~/.kube/config.")
    context: str | None = Field(default=None, description="kubeconfig context.")
    in_cluster: bool = Field(default=False, description="Use the pod's service account.")
    slack_bot_token: SecretStr | None = None
    slack_signing_secret: SecretStr | None = None
    slack_api_url: str | None = Field(default=None, description="Slack Web API base URL (proxies, tests).")
    slack_channel: str | None = Field(default=None, description="Default channel for runs.")
    severity_channels: dict[str, str] = Field(default_factory=dict, description="severity -> channel routing.")
    webhook_token: SecretStr | None = Field(default=None, description="Bearer token Alertmanager must send.")
    webhook_basic_auth: SecretStr | None = Field(default=None, description="'user:password' Alertmanager may send.")
    workers: int = Field(default=4, ge=1, le=256)
    queue_size: int = Field(default=1000, ge=1)
    dedup_cooldown: float = Field(default=600.0, ge=0, description="Seconds a finished run still absorbs repeats.")
    runners: tuple[str, ...] = Field(default=(), description="Default: who may start runs from chat (empty: anyone).")
    approvers: tuple[str, ...] = Field(default=(), description="Default approvers when a runbook names none.")
    max_body_bytes: int = Field(default=1_048_576, ge=1024)
    user: str = Field(default_factory=lambda: os.environ.get("USER", "cli"), description="Your name on the CLI.")

    @classmethod
    def load(cls, config: str | Path | None = None, environ: Mapping[str, str] | None = None) -> Settings:
        """Settings from `config` (YAML) overlaid with RUNBOOK_* variables; SettingsError names a bad key."""
        environ = os.environ if environ is None else environ
        data: dict[str, Any] = {}
        config = config or environ.get("RUNBOOK_CONFIG")
        if config:
            try:
                loaded = yaml.safe_load(Path(config).read_text(encoding="utf-8")) or {}
            except (OSError, yaml.YAMLError) as exc:
                raise SettingsError(f"cannot read config file {config}: {exc}") from exc
            if not isinstance(loaded, dict):
                raise SettingsError(f"config file {config} must hold a mapping of settings")
            data.update(loaded)
        for name, field in cls.model_fields.items():
            value = environ.get(f"RUNBOOK_{name.upper()}")
            if value is None:
                continue
            if field.annotation is not None and "tuple" in str(field.annotation):
                data[name] = [v.strip() for v in value.split(",") if v.strip()]
            elif field.annotation is not None and "dict" in str(field.annotation):
                data[name] = dict(p.split("=", 1) for p in value.split(",") if "=" in p)
            else:
                data[name] = value
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            first = exc.errors(include_url=False)
            problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in first)
            raise SettingsError(f"bad setting: {problems} (file {config or '-'} or RUNBOOK_* variables)") from None
