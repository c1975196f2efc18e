"""Generation reaches every clause of the contract (issue 12).

The dirty dataset strategy the full-path tests use must show every label of
COVERAGE_LABELS: each bound on both sides, each character class, each
rounding trap and currency, and real key collisions for the marts' GROUP BYs.
The run is derandomized (a fixed sequence of examples), so the test is
deterministic; it fails, listing the labels never seen, when generation stops
reaching one of them.

Why 600 examples and not 200: Hypothesis copies choices between rows and
examples, so a label drawn about once in 20 corrupt rows is still missed by
some 200-example runs (0-5 of ~110 labels across seeds, see docs/properties.md);
600 derandomized examples (~10 s) leave no label to chance.
"""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import HealthCheck, Phase, given, settings

from pipeline_props.strategies import SalesDataset, _records, sales_datasets
from pipeline_props.strategies._coverage import COVERAGE_LABELS, missing_labels

pytestmark = pytest.mark.unit

EXAMPLES = 600


def _labels_per_example(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """How many of EXAMPLES examples showed each label."""
    seen: Counter[str] = Counter()
    current: set[str] = set()
    monkeypatch.setattr(_records, "event", current.add)

    @settings(max_examples=EXAMPLES, derandomize=True, database=None, deadline=None,
              phases=[Phase.generate], suppress_health_check=list(HealthCheck))
    @given(sales_datasets(max_rows=12, files=(1, 2), error_rate=0.25, duplicate_rate=0.25))
    def run(ds: SalesDataset) -> None:
        seen.update(current)
        current.clear()

    run()
    return seen


def test_every_clause_is_generated(monkeypatch: pytest.MonkeyPatch) -> None:
    seen = _labels_per_example(monkeypatch)
    missing = missing_labels(set(seen))
    rarest = sorted((n, label) for label, n in seen.items())[:10]
    assert not missing, (f"never generated in {EXAMPLES} examples: {missing}\n"
                         f"rarest labels seen (examples, label): {rarest}")


def test_missing_labels_names_what_was_not_seen() -> None:
    everything = {label for labels in COVERAGE_LABELS.values() for label in labels}
    assert missing_labels(everything | {"corruption: MISSING_FIELD/x", "dup: conflicting y",
                                        "corruption: INVALID_FORMAT/x",
                                        "corruption: OUT_OF_RANGE/x",
                                        "corruption: UNKNOWN_CODE/x",
                                        "corruption: MALFORMED_ROW/x"}) == []
    assert missing_labels(everything - {"limit: year 2099"}) != []
    assert "limit: year 2099" in missing_labels(everything - {"limit: year 2099"})
