"""One root exception type, with subclasses that carry an exit code and a hint.

Every error pipeline-props raises on purpose is a :class:`PipelinePropsError`.
The CLI maps it to its ``exit_code`` (2 for usage, input and infrastructure
problems; 1 when the checks found a divergence) and prints ``str(error)``,
which always says what is wrong and, where there is one, what to run.
"""

from __future__ import annotations

from pathlib import Path

EXIT_OK = 0
EXIT_DIVERGENCE = 1
EXIT_ERROR = 2


class PipelinePropsError(Exception):
    """Root of every error raised by pipeline-props on purpose."""

    exit_code: int = EXIT_ERROR

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        self.message = message
        self.hint = hint
        super().__init__(message if not hint else f"{message}\n  hint: {hint}")


class ConfigError(PipelinePropsError):
    """A configuration key or value is unknown or invalid."""

    def __init__(self, key: str, value: object, expected: str, *, source: str | None = None) -> None:
        self.key = key
        self.value = value
        self.expected = expected
        self.source = source
        where = f" (from {source})" if source else ""
        super().__init__(f"config key {key!r} = {value!r}{where}: expected {expected}")


class InputError(PipelinePropsError):
    """An input file is refused as a whole; nothing of it was ingested."""

    def __init__(
        self,
        file: str | Path,
        problem: str,
        *,
        record: int | None = None,
        field: str | None = None,
        hint: str | None = None,
    ) -> None:
        self.file = str(file)
        self.problem = problem
        self.record = record
        self.field = field
        parts = [f"input file {self.file!s}"]
        if record is not None:
            parts.append(f"record {record}")
        if field is not None:
            parts.append(f"field {field!r}")
        super().__init__(", ".join(parts) + f": {problem}", hint=hint)


class InfrastructureError(PipelinePropsError):
    """A service could not be started, reached or stopped."""

    def __init__(
        self,
        service: str,
        problem: str,
        *,
        log_path: str | Path | None = None,
        hint: str | None = None,
    ) -> None:
        self.service = service
        self.problem = problem
        self.log_path = str(log_path) if log_path else None
        msg = f"{service}: {problem}"
        if self.log_path:
            msg += f" (log: {self.log_path})"
        super().__init__(msg, hint=hint)


class PipelineStageError(PipelinePropsError):
    """A pipeline stage failed while running (after the services were up)."""

    def __init__(self, stage: str, problem: str, *, hint: str | None = None) -> None:
        self.stage = stage
        self.problem = problem
        super().__init__(f"stage {stage}: {problem}", hint=hint)


class DivergenceError(PipelinePropsError):
    """The pipeline under test and the oracle disagree, or a validation failed."""

    exit_code = EXIT_DIVERGENCE


class UsageError(PipelinePropsError):
    """A command or API was called with arguments that cannot work together."""
