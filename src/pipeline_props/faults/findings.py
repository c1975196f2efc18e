"""Classify what went wrong after a fault: lost, duplicated and phantom records, and where.

A record's identity is its position ``(file_index, record_number)`` (contract
section 6); findings show it with the event id read from the file, so a person
can find it. Stages, in pipeline order:

* ``kafka``: the topic. A position is *lost* when its send was acknowledged and
  it is not in the topic, *duplicated* when the topic holds more copies than the
  application sent (a producer retry that was not deduplicated), *phantom* when
  it is in the topic and was never sent.
* ``staging``: stg_events + stg_rejects after the stream caught up. *Lost*:
  acknowledged, or in the topic when the catch-up started, but not staged; *duplicated*: staged more than
  once; *phantom*: staged and never sent.
* ``marts``: the five tables differ from the oracle although staging is clean.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

Position = tuple[int, int]

STAGES: tuple[str, ...] = ("kafka", "staging", "marts")


@dataclass
class StageFindings:
    """What is wrong at one stage (empty lists when it is clean)."""

    stage: str
    lost: list[Position] = field(default_factory=list)
    duplicated: list[tuple[Position, int]] = field(default_factory=list)
    phantom: list[Position] = field(default_factory=list)
    detail: str = ""

    @property
    def ok(self) -> bool:
        return not (self.lost or self.duplicated or self.phantom or self.detail)


@dataclass
class Findings:
    """Findings of every stage checked, plus the event ids of the positions involved."""

    stages: dict[str, StageFindings] = field(default_factory=dict)
    event_ids: dict[Position, str | None] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return all(s.ok for s in self.stages.values())

    @property
    def first_bad_stage(self) -> str | None:
        """The earliest stage that went wrong (where to look first)."""
        for name in STAGES:
            if name in self.stages and not self.stages[name].ok:
                return name
        return None

    def counts(self) -> dict[str, int]:
        """Records lost / duplicated / phantom at the last stage checked (the outcome that matters)."""
        last = next((self.stages[s] for s in reversed(STAGES[:2]) if s in self.stages), None)
        if last is None:
            return {"lost": 0, "duplicated": 0, "phantom": 0}
        return {"lost": len(last.lost), "duplicated": sum(n - 1 for _, n in last.duplicated),
                "phantom": len(last.phantom)}

    def _label(self, pos: Position) -> str:
        eid = self.event_ids.get(pos)
        return f"file {pos[0]} record {pos[1]}" + (f" (event_id {eid})" if eid else "")

    def render(self, limit: int = 10) -> str:
        """A person's summary: per stage, which records were lost, duplicated or phantom."""
        if self.ok:
            return "no record lost, duplicated or phantom at any stage"
        lines = [f"first stage that went wrong: {self.first_bad_stage}"]
        for name in STAGES:
            s = self.stages.get(name)
            if s is None or s.ok:
                continue
            if s.lost:
                lines.append(f"  {name}: {len(s.lost)} lost: "
                             + ", ".join(self._label(p) for p in s.lost[:limit]))
            if s.duplicated:
                lines.append(f"  {name}: {len(s.duplicated)} duplicated: "
                             + ", ".join(f"{self._label(p)} x{n}" for p, n in s.duplicated[:limit]))
            if s.phantom:
                lines.append(f"  {name}: {len(s.phantom)} phantom (never sent): "
                             + ", ".join(self._label(p) for p in s.phantom[:limit]))
            if s.detail:
                lines.append(f"  {name}: {s.detail}")
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        def lab(p: Position) -> dict[str, Any]:
            return {"file_index": p[0], "record_number": p[1], "event_id": self.event_ids.get(p)}

        return {
            "ok": self.ok,
            "first_bad_stage": self.first_bad_stage,
            "stages": {
                n: {"lost": [lab(p) for p in s.lost],
                    "duplicated": [{**lab(p), "copies": c} for p, c in s.duplicated],
                    "phantom": [lab(p) for p in s.phantom], "detail": s.detail}
                for n, s in self.stages.items()
            },
        }


def classify(
    *,
    sends: Mapping[Position, int],
    acked: Iterable[Position],
    topic: Iterable[Position] | None = None,
    staging: Iterable[Position] | None = None,
    event_ids: Mapping[Position, str | None] | None = None,
    marts_detail: str = "",
    max_copies: Mapping[Position, int] | None = None,
    due_in_staging: Iterable[Position] | None = None,
) -> Findings:
    """Compare what was sent with what each stage holds.

    ``sends``: how many times the application sent each position (a producer
    rerun sends a position again); ``acked``: positions whose send was
    acknowledged (they must arrive); positions sent but not acknowledged (send
    outcome unknown) may be missing, but never more than once in staging.
    ``topic`` / ``staging``: every position found there, one entry per copy.
    ``max_copies`` overrides how many topic copies a position may have (default:
    its send count). ``due_in_staging``: the topic positions the stream was due
    to stage (those in the topic when its last catch-up started; default: all of
    ``topic``). A position staged but not due is fine: it arrived during the run.
    """
    acked_set = set(acked)
    f = Findings(event_ids=dict(event_ids or {}))
    if topic is not None:
        tc = Counter(topic)
        allowed = max_copies or sends
        f.stages["kafka"] = StageFindings(
            "kafka",
            lost=sorted(p for p in acked_set if tc[p] == 0),
            duplicated=sorted((p, n) for p, n in tc.items() if p in sends and n > allowed.get(p, 1)),
            phantom=sorted(p for p in tc if p not in sends),
        )
    if staging is not None:
        sc = Counter(staging)
        must = set(acked_set)
        reached = due_in_staging if due_in_staging is not None else topic
        if reached is not None:
            must |= {p for p in reached if p in sends}  # reached Kafka in time: must reach staging
        f.stages["staging"] = StageFindings(
            "staging",
            lost=sorted(p for p in must if sc[p] == 0),
            duplicated=sorted((p, n) for p, n in sc.items() if n > 1),
            phantom=sorted(p for p in sc if p not in sends),
        )
    if marts_detail:
        f.stages["marts"] = StageFindings("marts", detail=marts_detail)
    return f


__all__ = ["STAGES", "Findings", "Position", "StageFindings", "classify"]
