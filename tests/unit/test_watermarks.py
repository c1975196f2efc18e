"""Watermark reads (unit): a broker's transient refusal is asked again, within the time budget."""

from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException

from pipeline_props.pipeline import watermarks


@dataclass
class _Broker:
    """A consumer's two calls, answered by a script: each entry refuses with that code or answers."""

    script: list[int | None]
    calls: int = 0
    topic: str = "t"
    marks: dict[int, tuple[int, int]] = field(default_factory=lambda: {0: (0, 3), 1: (1, 5)})

    def list_topics(self, topic: str, timeout: float) -> Any:
        assert timeout > 0
        return SimpleNamespace(topics={topic: SimpleNamespace(partitions={p: None for p in self.marks})})

    def get_watermark_offsets(self, tp: Any, timeout: float) -> tuple[int, int]:
        assert timeout > 0
        code = self.script[self.calls] if self.calls < len(self.script) else None
        self.calls += 1
        if code is not None:
            raise KafkaException(KafkaError(code))
        return self.marks[tp.partition]


@pytest.mark.unit
def test_not_leader_right_after_the_topic_was_created_is_asked_again(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(watermarks, "_BACKOFF_S", 0.01)
    broker = _Broker(script=[KafkaError.NOT_LEADER_FOR_PARTITION, KafkaError.LEADER_NOT_AVAILABLE])
    assert watermarks.read_watermarks(broker, "t", timeout=5) == {0: (0, 3), 1: (1, 5)}
    assert broker.calls == 4


@pytest.mark.unit
def test_a_refusal_that_outlives_the_budget_is_raised(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(watermarks, "_BACKOFF_S", 0.01)
    broker = _Broker(script=[KafkaError.NOT_LEADER_FOR_PARTITION] * 10_000)
    with pytest.raises(KafkaException) as caught:
        watermarks.read_watermarks(broker, "t", timeout=0.3)
    assert caught.value.args[0].code() == KafkaError.NOT_LEADER_FOR_PARTITION
    assert broker.calls > 1


@pytest.mark.unit
def test_a_refusal_that_is_not_transient_is_raised_at_once() -> None:
    broker = _Broker(script=[KafkaError.TOPIC_AUTHORIZATION_FAILED])
    with pytest.raises(KafkaException):
        watermarks.read_watermarks(broker, "t", timeout=5)
    assert broker.calls == 1


@pytest.mark.unit
def test_the_budget_must_be_positive() -> None:
    with pytest.raises(ValueError, match="timeout=0"):
        watermarks.read_watermarks(_Broker(script=[]), "t", timeout=0)
