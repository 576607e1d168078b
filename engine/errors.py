"""The engine's error tree.

Definition errors are about runbook files; parameter and settings errors about input from people;
step errors happen while a step runs and say whether retrying can help.
Integrations translate their own exceptions into these at the boundary.
"""

from __future__ import annotations

from dataclasses import dataclass


class RunbookError(Exception):
    """Base of every error the engine raises on purpose."""


@dataclass(frozen=True)
class Problem:
    """One thing wrong in a runbook file, located as precisely as the YAML allows."""

    file: str
    line: int
    column: int
    path: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}:{self.column}" if self.line else self.file
        return f"{where} {self.path}: {self.message}" if self.path else f"{where} {self.message}"


class DefinitionError(RunbookError):
    """A runbook (or runbook test) file is invalid; carries every problem found, not just the first."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


class ParamError(RunbookError):
    """Parameter values from the CLI, chat or an alert do not fit the runbook's declared params."""


class SettingsError(RunbookError):
    """A configuration value is missing or malformed; the message names the key."""


class RunStateError(RunbookError):
    """An operation does not fit the run's current state (e.g. approving a finished run)."""


class UnknownRunError(RunStateError):
    """No run with that id exists in the store."""


class ApprovalError(RunStateError):
    """The person may not approve or reject this run (not an approver, or approving their own request)."""


class StepError(RunbookError):
    """A step failed. Permanent unless a subclass says otherwise."""

    transient = False
    retry_after: float | None = None


class PermanentError(StepError):
    """Retrying cannot help: the input, the object or the permissions are wrong."""


class TransientError(StepError):
    """Retrying may help; `retry_after` (seconds) is the server's hint, if it gave one."""

    transient = True

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class NotFoundError(PermanentError):
    """The object the step needs does not exist."""


class ForbiddenError(PermanentError):
    """The identity the engine acts as lacks a permission; `permission` names what to grant."""

    def __init__(self, message: str, permission: str | None = None) -> None:
        super().__init__(message)
        self.permission = permission


class InvalidError(PermanentError):
    """The server rejected the request as invalid (HTTP 422)."""


class ConflictError(TransientError):
    """Someone else changed the object in between; re-reading and retrying usually succeeds."""


class StepTimeout(TransientError):
    """The step did not finish within its timeout."""


class OutcomeUnknown(StepError):
    """A change was sent but no answer says whether it took effect (connection lost, timeout, 5xx).

    Never retried: sending it again could apply it twice. `check` names what a person should look at.
    """

    def __init__(self, message: str, check: str = "") -> None:
        super().__init__(message)
        self.check = check


class StoreError(RunbookError):
    """The run store cannot be reached or cannot commit (disk full, database down); nothing was written."""


class SchemaError(StoreError):
    """The database's schema does not fit this engine: it needs `runbook db migrate`, or it only serves
    newer engines (a replica older than the oldest version the schema still serves must not start)."""
