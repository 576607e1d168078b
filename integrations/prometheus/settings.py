"""Where the Prometheus servers are and how to authenticate: `plugins.prometheus` in the settings file.

```yaml
plugins:
  prometheus:
    sources:
      - name: main
        url: http://prometheus.monitoring:9090
        bearer_token_file: /var/run/secrets/prometheus/token     # or basic_auth_file: "user:password"
```

Credentials are read from their file at each query (so a rotated secret is picked up) and never stored,
logged or shown.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from engine.errors import SettingsError

NAME = r"^[a-z0-9]([-a-z0-9_]*[a-z0-9])?$"


class Source(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(pattern=NAME)
    url: str = Field(pattern=r"^https?://", description="Base URL, e.g. http://prometheus.monitoring:9090.")
    bearer_token_file: str | None = None
    basic_auth_file: str | None = Field(default=None, description="A file holding 'user:password'.")
    ca_file: str | None = None
    timeout: float = Field(default=15.0, gt=0, le=300)

    @model_validator(mode="after")
    def _one_auth(self) -> Source:
        if self.bearer_token_file and self.basic_auth_file:
            raise ValueError("give bearer_token_file or basic_auth_file, not both")
        return self

    def headers(self) -> dict[str, str]:
        """The Authorization header from the secret file, read now."""
        if self.bearer_token_file:
            return {"Authorization": f"Bearer {_secret(self.bearer_token_file)}"}
        return {}

    def basic_auth(self) -> tuple[str, str] | None:
        if not self.basic_auth_file:
            return None
        user, sep, password = _secret(self.basic_auth_file).partition(":")
        if not sep:
            raise SettingsError(f"prometheus source {self.name}: {self.basic_auth_file} must hold 'user:password'")
        return user, password


def _secret(path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise SettingsError(f"cannot read the Prometheus credential file {path}: {exc.strerror}") from None


class PrometheusSettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    sources: tuple[Source, ...] = ()

    @model_validator(mode="after")
    def _unique(self) -> PrometheusSettings:
        names = [s.name for s in self.sources]
        if len(names) != len(set(names)):
            raise ValueError("prometheus source names must be unique")
        return self

    @classmethod
    def parse(cls, section: Mapping[str, Any] | None) -> PrometheusSettings:
        try:
            return cls.model_validate(dict(section or {}))
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors(include_url=False))
            raise SettingsError(f"bad setting plugins.prometheus: {problems}") from None

    def source(self, name: str | None) -> Source:
        if not self.sources:
            raise SettingsError("no Prometheus is configured (settings: plugins.prometheus.sources)")
        if name is None:
            return self.sources[0]
        for source in self.sources:
            if source.name == name:
                return source
        known = ", ".join(s.name for s in self.sources)
        raise SettingsError(f"no Prometheus source named {name!r} (configured: {known})")
