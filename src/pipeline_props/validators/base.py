"""Result types, the validator base class and registry, and helpers shared by the stage validators.

A check's ``details`` always carry ``"kind"``: ``"data"`` when the check
judges the dataset (dirty input: nulls, duplicates, rejected rows) and
``"pipeline"`` when it judges the pipeline (schemas it wrote, rows it lost or
invented). The numbers a check compared are in its details too.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, ClassVar, Literal

from pipeline_props.config import PipelineStageSettings
from pipeline_props.errors import UsageError

Kind = Literal["data", "pipeline"]
DATA: Kind = "data"
PIPELINE: Kind = "pipeline"

#: The built-in stages, upstream first (used to find a stage's nearest upstream count).
STAGE_ORDER: tuple[str, ...] = ("raw", "kafka", "spark", "warehouse")


@dataclass(frozen=True)
class CheckResult:
    """One check: its name, verdict, a 0..1 score and the numbers it compared."""

    check_name: str
    passed: bool
    score: float
    details: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        """The check as it appears in the validation report."""
        return {"check_name": self.check_name, "passed": self.passed, "score": self.score,
                "details": dict(self.details)}


@dataclass(frozen=True)
class StageResult:
    """The checks of one stage; it passed when every check passed, its score is their mean."""

    stage: str
    passed: bool
    score: float
    checks: list[CheckResult]

    @classmethod
    def from_checks(cls, stage: str, checks: Sequence[CheckResult]) -> StageResult:
        """Aggregate ``checks``: passed = all passed, score = mean score (1.0 for no checks)."""
        checks = list(checks)
        score = sum(c.score for c in checks) / len(checks) if checks else 1.0
        return cls(stage=stage, passed=all(c.passed for c in checks), score=score, checks=checks)

    def to_dict(self) -> dict[str, Any]:
        """The stage as it appears in the validation report."""
        return {"stage": self.stage, "passed": self.passed, "score": self.score,
                "checks": [c.to_dict() for c in self.checks]}


class BaseDataValidator(ABC):
    """A validator for one pipeline stage.

    Subclass it, set ``stage`` and decorate the class with
    :func:`register_validator`; :class:`~pipeline_props.validators.PipelineValidator`
    then runs it whenever ``validation_data`` has a key named ``stage``.
    ``validate`` receives the whole ``validation_data`` mapping, so a stage can
    compare its counts with the stages upstream of it.
    """

    stage: ClassVar[str]

    def __init__(self, thresholds: PipelineStageSettings) -> None:
        self.thresholds = thresholds

    @abstractmethod
    def validate(self, data: Mapping[str, Any]) -> StageResult:
        """Run this stage's checks on ``data[self.stage]`` (and upstream stages where needed)."""

    def payload(self, data: Mapping[str, Any]) -> Mapping[str, Any]:
        """``data[self.stage]``, or a UsageError when it is absent or not a mapping."""
        return stage_payload(data, self.stage)


_REGISTRY: dict[str, type[BaseDataValidator]] = {}


def register_validator(cls: type[BaseDataValidator]) -> type[BaseDataValidator]:
    """Class decorator: register ``cls`` as the validator of ``cls.stage``.

    Registering a second class for a stage replaces the first (so a team can
    swap a built-in validator for its own); the stage keeps its place in the
    run order, and other stages run after the built-in ones.
    """
    if not (isinstance(cls, type) and issubclass(cls, BaseDataValidator)):
        raise UsageError(f"register_validator expects a BaseDataValidator subclass, got {cls!r}")
    stage = getattr(cls, "stage", None)
    if not isinstance(stage, str) or not stage:
        raise UsageError(f"{cls.__name__} must set the class attribute `stage` to a non-empty string")
    _REGISTRY[stage] = cls
    return cls


def registered_validators() -> dict[str, type[BaseDataValidator]]:
    """A copy of the registry: stage name -> validator class, in run order.

    The built-in stages come first, upstream first; other stages follow in
    the order they were registered.
    """
    def position(stage: str) -> int:
        return STAGE_ORDER.index(stage) if stage in STAGE_ORDER else len(STAGE_ORDER)

    return {stage: _REGISTRY[stage] for stage in sorted(_REGISTRY, key=position)}


# --- helpers for the stage validators -------------------------------------------------------


def stage_payload(data: Mapping[str, Any], stage: str) -> Mapping[str, Any]:
    """``data[stage]`` checked to be a mapping."""
    if stage not in data:
        raise UsageError(f"validation_data has no {stage!r} entry")
    payload = data[stage]
    if not isinstance(payload, Mapping):
        raise UsageError(f"validation_data[{stage!r}] must be a mapping, got {type(payload).__name__}")
    return payload


def count(payload: Mapping[str, Any], key: str, where: str) -> int:
    """A required non-negative integer ``payload[key]``; ``where`` names the payload in errors."""
    if key not in payload:
        raise UsageError(f"{where} has no {key!r} count")
    return as_count(payload[key], f"{where}[{key!r}]")


def optional_count(payload: Mapping[str, Any], key: str, where: str) -> int | None:
    """``payload[key]`` as a count, or None when absent or None."""
    if payload.get(key) is None:
        return None
    return as_count(payload[key], f"{where}[{key!r}]")


def as_count(value: Any, where: str) -> int:
    """``value`` as a non-negative int (bools and fractions refused)."""
    if isinstance(value, bool) or not isinstance(value, int):
        try:
            # Counts read back from a warehouse may arrive as Decimal or numpy ints.
            as_int = int(value)
            ok = as_int == value
        except (TypeError, ValueError):
            ok = False
        if isinstance(value, bool) or not ok:
            raise UsageError(f"{where} must be an integer count, got {value!r}")
        value = as_int
    if value < 0:
        raise UsageError(f"{where} must not be negative, got {value}")
    return value


def exact(threshold: float) -> Fraction:
    """A threshold as the decimal the user wrote (0.05 is 1/20, not the binary float above it)."""
    return Fraction(repr(threshold))


def ratio(part: int, whole: int, *, empty: float = 0.0) -> Fraction:
    """``part / whole`` exactly; ``empty`` when ``whole`` is 0."""
    return Fraction(part, whole) if whole else Fraction(repr(empty))


def raw_rows_read(data: Mapping[str, Any]) -> int | None:
    """Rows read from all files (sum of ``raw.files[*].rows_read``), or None without a raw entry."""
    if "raw" not in data:
        return None
    files = stage_payload(data, "raw").get("files")
    if not isinstance(files, Sequence) or isinstance(files, (str, bytes)):
        raise UsageError("validation_data['raw']['files'] must be a list of per-file dicts")
    return sum(count(f, "rows_read", f"validation_data['raw']['files'][{i}]")
               for i, f in enumerate(files))


def upstream_rows(data: Mapping[str, Any], stage: str) -> tuple[str, int] | None:
    """The row count handed on by the nearest stage upstream of ``stage`` that is present.

    raw: rows read from the files; kafka: messages in the topic; spark: rows in.
    """
    position = STAGE_ORDER.index(stage)
    for upstream in reversed(STAGE_ORDER[:position]):
        if upstream not in data:
            continue
        if upstream == "raw":
            total = raw_rows_read(data)
            assert total is not None
            return "raw.rows_read", total
        if upstream == "kafka":
            return "kafka.messages_in_topic", count(
                stage_payload(data, "kafka"), "messages_in_topic", "validation_data['kafka']")
        if upstream == "spark":
            return "spark.rows_in", count(stage_payload(data, "spark"), "rows_in",
                                          "validation_data['spark']")
    return None


@dataclass(frozen=True)
class Equation:
    """One conservation law: ``left == right``, with the names of both sides."""

    left: str
    left_value: int
    right: str
    right_value: int

    @property
    def holds(self) -> bool:
        return self.left_value == self.right_value

    def to_dict(self) -> dict[str, Any]:
        return {"equation": f"{self.left} == {self.right}", "left": self.left_value,
                "right": self.right_value, "holds": self.holds}


def conservation_check(equations: Sequence[Equation], *, problems: Sequence[str] = (),
                       extra: Mapping[str, Any] | None = None,
                       name: str = "row_count_conservation") -> CheckResult:
    """A pipeline check that every equation holds and there is no listed problem.

    The score is the worst side ratio min/max over the equations (so 990 of
    1000 rows kept scores 0.99), and 0 when there is a problem. ``extra``
    adds context to the details.
    """
    worst = Fraction(1)
    for eq in equations:
        if eq.holds:
            continue
        lo, hi = sorted((eq.left_value, eq.right_value))
        worst = min(worst, Fraction(max(lo, 0), hi) if hi > 0 else Fraction(0))
    failed = [eq.to_dict()["equation"] for eq in equations if not eq.holds]
    details: dict[str, Any] = {
        "kind": PIPELINE,
        "equations": [eq.to_dict() for eq in equations],
        "failed": failed,
        **(extra or {}),
    }
    if problems:
        details["problems"] = list(problems)
        worst = Fraction(0)
    return CheckResult(check_name=name, passed=not failed and not problems, score=float(worst),
                       details=details)
