"""The deterministic generator: same seed same bytes, scenarios, error rate, speed."""

from __future__ import annotations

import csv
import importlib.util
import io
import time
from datetime import date
from pathlib import Path

import pytest

from pipeline_props import contract as c
from pipeline_props import errors
from pipeline_props.strategies import (
    SCENARIOS,
    DataGenerationConfig,
    DataGenerator,
    SalesDataset,
    TestDataGenerator,
)

pytestmark = pytest.mark.unit

# The independent contract reading lives beside this file; load it by path so the
# test does not depend on how pytest puts test folders on sys.path.
_spec = importlib.util.spec_from_file_location(
    "_strategies_checks", Path(__file__).with_name("test_strategies.py")
)
assert _spec and _spec.loader
_checks = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_checks)
reason_for = _checks.reason_for


def _classify(data: bytes) -> list[str | None]:
    """Per record: None when valid, else the reason an independent reading gives.

    Python's csv module (lenient mode) splits the records; bytes that are not
    UTF-8 survive as surrogates and a wrong field count is MALFORMED_ROW.
    """
    text = data.decode("utf-8", "surrogateescape")
    rows = list(csv.reader(io.StringIO(text, newline="")))[1:]
    out: list[str | None] = []
    for row in rows:
        if not row:
            continue
        if len(row) != len(c.COLUMNS) or any(
            0xDC80 <= ord(ch) <= 0xDCFF for field in row for ch in field
        ):
            out.append(c.MALFORMED_ROW)
        else:
            out.append(reason_for(dict(zip(c.COLUMNS, row))))
    return out


def test_same_seed_same_bytes_and_other_seed_other_bytes() -> None:
    a = DataGenerator(DataGenerationConfig(seed=7)).generate_csv_data(500)
    b = DataGenerator(DataGenerationConfig(seed=7)).generate_csv_data(500)
    other = DataGenerator(DataGenerationConfig(seed=8)).generate_csv_data(500)
    assert a == b and a != other
    scen = DataGenerator().generate_test_scenario_data("data_quality_issues", 300)
    assert scen == DataGenerator().generate_test_scenario_data("data_quality_issues", 300)


def test_csv_data_has_the_header_and_n_valid_records() -> None:
    data = DataGenerator().generate_csv_data(2000)
    header, rows = _checks.parse_file(data)
    assert header == list(c.COLUMNS) and len(rows) == 2000
    assert all(reason_for(dict(zip(c.COLUMNS, r))) is None for r in rows)
    assert len({r[0] for r in rows}) == 2000  # no duplicates
    assert DataGenerator().generate_csv_data(0) == ",".join(c.COLUMNS).encode() + b"\n"


def test_error_rate_is_roughly_honoured() -> None:
    data = DataGenerator(DataGenerationConfig(error_rate=0.2, seed=3)).generate_csv_data(5000)
    reasons = _classify(data)
    assert len(reasons) == 5000 == SalesDataset((("f", data),)).row_count
    rejected = sum(r is not None for r in reasons)
    assert 0.17 <= rejected / 5000 <= 0.23, rejected


@pytest.mark.parametrize("name", SCENARIOS)
def test_every_scenario_has_the_records_asked_for(name: str) -> None:
    ds = DataGenerator().generate_test_scenario_data(name, 600)
    assert isinstance(ds, SalesDataset) and ds.files
    assert ds.row_count == 600
    for _, data in ds.files:
        header_line = data.decode("utf-8", "replace").lstrip("\ufeff").splitlines()[0]
        names = next(csv.reader([header_line]))
        assert set(c.COLUMNS) <= {n.strip(" \t") for n in names}
    if name == "error_recovery":
        assert len(ds.files) > 1
    if name in ("happy_path", "high_volume", "performance_benchmark", "error_recovery",
                "edge_cases"):
        for _, data in ds.files:
            header, rows = _checks.parse_file(data)
            for row in rows:
                values = {k: row[header.index(k)] for k in c.COLUMNS}
                assert reason_for(values) is None, (name, values)


def test_data_quality_issues_cover_every_reason() -> None:
    ds = DataGenerator().generate_test_scenario_data("data_quality_issues", 3000)
    # The last record leaves its quote open to the end of the file: look at the others.
    text = ds.files[0][1].rsplit(b"\n", 2)[0] + b"\n"
    reasons = _classify(text)
    assert len(reasons) == 2999
    assert 0.07 <= sum(r is not None for r in reasons) / len(reasons) <= 0.13
    assert set(reasons) - {None} == set(c.REASONS) - {c.CONFLICTING_DUPLICATE}
    versions: dict[str, list[tuple[str, tuple]]] = {}
    rows = list(csv.reader(io.StringIO(text.decode("utf-8", "surrogateescape"), newline="")))
    for row, reason in zip([r for r in rows[1:] if r], reasons):
        if reason is None:
            values = dict(zip(c.COLUMNS, row))
            versions.setdefault(row[0], []).append((",".join(row), _checks.normalised(values)))
    assert any(len({n for _, n in v}) > 1 for v in versions.values())  # conflicting
    assert any(len({t for t, _ in v}) > 1 and len({n for _, n in v}) == 1
               for v in versions.values())  # identical, respelled


def test_unknown_scenario_lists_the_valid_names() -> None:
    with pytest.raises(errors.UsageError) as info:
        DataGenerator().generate_test_scenario_data("nope", 10)
    assert all(name in str(info.value) for name in SCENARIOS)


@pytest.mark.parametrize(
    ("kwargs", "key"),
    [
        ({"num_customers": 0}, "num_customers"),
        ({"error_rate": 2.0}, "error_rate"),
        ({"start_date": date(2024, 5, 1), "end_date": date(2024, 1, 1)}, "end_date"),
        ({"start_date": date(1999, 1, 1)}, "start_date"),
        ({"seed": "x"}, "seed"),
    ],
)
def test_config_is_validated(kwargs: dict, key: str) -> None:
    with pytest.raises(errors.ConfigError) as info:
        DataGenerationConfig(**kwargs)
    assert info.value.key == key


def test_alias_is_not_collected() -> None:
    assert TestDataGenerator is DataGenerator and DataGenerator.__test__ is False


def test_one_million_rows_speed(record_property: pytest.RecordProperty,
                                capsys: pytest.CaptureFixture[str]) -> None:
    start = time.perf_counter()
    data = DataGenerator().generate_csv_data(1_000_000)
    seconds = time.perf_counter() - start
    record_property("generate_csv_data_1M_seconds", round(seconds, 3))
    with capsys.disabled():
        print(f"\n[generator] 1,000,000 rows, {len(data) / 1e6:.1f} MB in {seconds:.2f} s")
    assert data.count(b"\n") == 1_000_001
