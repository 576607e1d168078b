"""The runbook format (`apiVersion: runbook/v1`, `kind: Runbook`) as a frozen, typed model.

Validated once at load; the executor only ever sees these objects, never raw YAML.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from engine.actions import Permission
from engine.verdict import Risk, Severity

DNS1123 = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
IDENTIFIER = r"^[a-z][a-z0-9_]*$"
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}


def parse_duration(value: Any) -> float:
    """Seconds from a number or a string such as `500ms`, `30s`, `5m`, `1h`, `1d`."""
    if isinstance(value, bool):
        raise ValueError("a duration is a number of seconds or a string like '30s', '5m', '1h'")
    if isinstance(value, int | float):
        return float(value)
    match = _DURATION.match(str(value))
    if not match:
        raise ValueError(f"{value!r} is not a duration; use seconds or e.g. '30s', '5m', '1h'")
    return float(match.group(1)) * _UNITS[match.group(2)]


DURATION_SCHEMA = {"anyOf": [{"type": "number", "exclusiveMinimum": 0},
                             {"type": "string", "pattern": r"^\s*\d+(\.\d+)?\s*(ms|s|m|h|d)?\s*$"}]}
Duration = Annotated[float, BeforeValidator(parse_duration), Field(gt=0), WithJsonSchema(DURATION_SCHEMA)]


class Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


class Metadata(Model):
    name: str = Field(pattern=DNS1123, max_length=63, description="DNS-1123 label naming the runbook.")
    title: str
    description: str = ""
    severity: Severity = "warning"
    owners: tuple[str, ...] = ()


class Param(Model):
    """A typed input. Values from the CLI, chat and alerts are all checked against it."""

    type: Literal["string", "integer", "boolean", "enum"]
    description: str = ""
    required: bool = False
    default: str | int | bool | None = None
    pattern: str | None = Field(default=None, description="Regular expression a string value must match.")
    values: tuple[str, ...] = Field(default=(), description="Allowed values of an enum.")
    minimum: int | None = None
    maximum: int | None = None

    @field_validator("pattern")
    @classmethod
    def _pattern_compiles(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"pattern does not compile: {exc}") from exc
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Param:
        if self.type == "enum" and not self.values:
            raise ValueError("an enum param needs 'values'")
        if self.type != "enum" and self.values:
            raise ValueError("'values' only applies to enum params")
        if self.required and self.default is not None:
            raise ValueError("a param with a default cannot be required")
        return self


class ParamMapping(Model):
    """How one param is taken from an alert: a label as is, a regex capture of it, a default or a constant,
    or the workload that owns the pod a label names (resolved read-only through ownerReferences at match time).

    Real alerts carry what their metric has, not what a runbook needs: `KubePodCrashLooping` names a pod,
    a workload runbook wants its Deployment.
    """

    from_: str | None = Field(default=None, alias="from", description="Alert label to read.")
    regex: str | None = Field(default=None, description="Anchored regex on the label; the first group is the value.")
    default: str | None = Field(default=None, description="Value when the label is absent (or the regex misses).")
    value: str | None = Field(default=None, description="A constant value; no label is read.")
    namespace_from: str | None = Field(default=None, description="With owner: label naming the pod's namespace.")
    owner: Literal["ReplicaSet", "Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob"] | None = Field(
        default=None, description="Resolve the object named by `from` to the owning object of this kind.")
    of: Literal["Pod", "ReplicaSet", "Job"] = Field(
        default="Pod", description="With owner: the kind of object the `from` label names (a Job for job_name).")

    @field_validator("regex")
    @classmethod
    def _regex_has_group(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                compiled = re.compile(value)
            except re.error as exc:
                raise ValueError(f"regex does not compile: {exc}") from exc
            if compiled.groups < 1:
                raise ValueError("regex needs a capture group: the param is its first group")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> ParamMapping:
        if (self.value is None) == (self.from_ is None):
            raise ValueError("a param mapping takes its value from exactly one of 'from' (a label) or 'value'")
        if self.owner and not self.namespace_from:
            raise ValueError("an owner lookup needs 'namespace_from': the label naming the pod's namespace")
        if self.owner and self.regex:
            raise ValueError("'owner' and 'regex' do not combine: the owner is looked up from the pod's name")
        return self

    @property
    def labels(self) -> tuple[str, ...]:
        """The labels this mapping reads."""
        return tuple(label for label in (self.from_, self.namespace_from) if label)


class AlertTrigger(Model):
    """Starts the runbook when a firing alert matches; alert labels become params through `params`."""

    match: dict[str, str] = Field(default_factory=dict, description="Label equality matchers.")
    match_re: dict[str, str] = Field(default_factory=dict, description="Label regex matchers (anchored).")
    params: dict[str, str | ParamMapping] = Field(
        default_factory=dict,
        description="param name -> alert label name, or a mapping (from/regex/default/value/owner).")
    priority: int = Field(default=0, description="When several runbooks match one alert, the highest priority wins.")

    @field_validator("match_re")
    @classmethod
    def _regexes_compile(cls, value: dict[str, str]) -> dict[str, str]:
        for label, pattern in value.items():
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"match_re.{label} does not compile: {exc}") from exc
        return value

    @model_validator(mode="after")
    def _has_matcher(self) -> AlertTrigger:
        if not self.match and not self.match_re:
            raise ValueError("an alert trigger needs at least one matcher in 'match' or 'match_re'")
        return self

    def matches(self, labels: dict[str, str]) -> bool:
        if any(labels.get(k) != v for k, v in self.match.items()):
            return False
        return all(re.fullmatch(p, labels.get(k, "")) for k, p in self.match_re.items())

    @property
    def specificity(self) -> int:
        """How many labels the matchers pin: the tie-breaker between equal priorities."""
        return len(self.match) + len(self.match_re)

    def mappings(self) -> dict[str, ParamMapping]:
        """Every param mapping in its full form (a bare label name is `{from: label}`)."""
        return {name: m if isinstance(m, ParamMapping) else ParamMapping.model_validate({"from": m})
                for name, m in self.params.items()}


class Triggers(Model):
    alerts: tuple[AlertTrigger, ...] = ()
    command: str | None = Field(default=None, pattern=DNS1123, description="Slash-command name.")


class Policy(Model):
    """Who may start and approve runs. Empty lists mean anyone (the server's default policy applies)."""

    runners: tuple[str, ...] = ()
    approvers: tuple[str, ...] = ()
    allow_self_approval: bool = False
    approval_timeout: Duration = 3600.0
    fallback_to_engine: bool = Field(
        default=False,
        description="When approvers are mapped to Kubernetes identities, let an unmapped approver's approval "
        "execute with the engine's own remediation role (otherwise it is refused).",
    )


class Chat(Model):
    channel: str | None = None


class Link(Model):
    """A link shown with every run (chat and run page): a dashboard, a logs query, a document."""

    title: str = Field(min_length=1, max_length=100)
    url: str = Field(max_length=2000, description="http(s) URL; may be a template over params, alert and run "
                     "(e.g. a dashboard for {{ params.node }}). Links that do not render to http(s) are left out.")


class Retry(Model):
    attempts: int = Field(default=1, ge=1, le=10)
    backoff: Duration = 1.0
    factor: float = Field(default=2.0, ge=1.0)
    max_delay: Duration = 30.0


class ProposalSpec(Model):
    """How a remediation step presents itself to the approver. Templated; a warning that renders empty
    does not apply to this run and is left out."""

    summary: str = ""
    reason: str = ""
    risk: Risk = "medium"
    warnings: tuple[str, ...] = ()


class Step(Model):
    id: str = Field(pattern=IDENTIFIER, description="Unique; later steps refer to it as steps.<id>.")
    title: str
    action: str
    with_: dict[str, Any] = Field(default_factory=dict, alias="with")
    when: str | None = Field(default=None, description="Jinja2 expression; the step is skipped when false.")
    timeout: Duration = 60.0
    retry: Retry = Retry()
    on_failure: Literal["abort", "continue"] = "abort"
    proposal: ProposalSpec | None = None
    permissions: tuple[str, ...] | None = Field(
        default=None,
        description="The RBAC rules this step needs (resource[/sub][.group]:verb), for `runbook rbac` when they "
        "depend on a templated argument such as a generic action's `kind`.",
    )
    foreach: str | None = Field(
        default=None,
        description="A template giving a list: the step runs once per item (`item` in its templates), as steps "
        "<id>_0, <id>_1, ...; each remediation item is its own proposal and approval.",
    )
    max_items: int = Field(default=10, ge=1, le=50, description="At most this many items of `foreach` run.")
    foreach_index: int | None = Field(default=None, ge=0, description="Set by the engine: the item this run takes.")

    @model_validator(mode="after")
    def _foreach_consistent(self) -> Step:
        if self.foreach is None and self.foreach_index is not None:
            raise ValueError("foreach_index is set by the engine for foreach steps")
        return self

    @field_validator("permissions")
    @classmethod
    def _permissions_parse(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        for text in value or ():
            Permission.parse(text)
        return value


class StepExpect(Model):
    """What one step must have done: its status, text its output contains (a notify step's message), and
    output fields (`path: value`, paths as `revisions[0].images[0]`)."""

    status: str | None = None
    contains: str | None = None
    output: dict[str, Any] = Field(default_factory=dict)


class TestExpect(Model):
    status: str | None = None
    steps: dict[str, StepExpect] = Field(default_factory=dict, description="step id -> what it must show.")
    findings: tuple[str, ...] = ()
    no_findings: tuple[str, ...] = ()
    proposals: tuple[str, ...] = ()
    no_proposals: tuple[str, ...] = ()
    plan: tuple[str, ...] = Field(default=(), description="Remediation step ids the whole plan must hold, in order.")
    objects: tuple[dict[str, Any], ...] = Field(
        default=(), description="State checks: {kind, name, namespace?, field, equals | absent}."
    )


class RunbookTest(Model):
    """A rehearsal: a scenario, how the run starts, and what its verdict must (not) contain."""

    name: str
    scenario: str
    params: dict[str, Any] = Field(default_factory=dict)
    alert: dict[str, Any] | None = None
    expect: TestExpect = TestExpect()
    approve: tuple[str, ...] = ()
    after: TestExpect | None = None


class Runbook(Model):
    api_version: Literal["runbook/v1"] = Field(alias="apiVersion")
    kind: Literal["Runbook"]
    metadata: Metadata
    params: dict[Annotated[str, Field(pattern=IDENTIFIER)], Param] = Field(default_factory=dict)
    triggers: Triggers = Triggers()
    policy: Policy = Policy()
    chat: Chat = Chat()
    links: tuple[Link, ...] = Field(default=(), max_length=10)
    steps: tuple[Step, ...] = Field(min_length=1)
    tests: tuple[RunbookTest, ...] = ()

    @property
    def name(self) -> str:
        return self.metadata.name
