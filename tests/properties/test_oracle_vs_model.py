"""Fast tier: the DuckDB oracle equals the pure-Python model on thousands of generated datasets.

The oracle is what the real pipeline is judged by, so it is tested too: the
model in tests/reference_model.py is a third, independent reading of the
contract, written for clarity, not speed.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from pipeline_props.compare import compare
from pipeline_props.errors import InputError
from pipeline_props.oracles import run_oracle
from pipeline_props.strategies import SalesDataset, sales_datasets
from pipeline_props.testing.profiles import examples_for
from reference_model import model_tables

pytestmark = [pytest.mark.properties, pytest.mark.unit]


def _both(dataset: SalesDataset):
    try:
        expected = model_tables(dataset.files)
    except InputError as exc:
        event("refused file")
        with pytest.raises(InputError) as info:
            run_oracle(dataset.files)
        assert info.value.file == exc.file
        return None
    return run_oracle(dataset.files).tables, expected


@settings(max_examples=examples_for("fast"), suppress_health_check=[HealthCheck.too_slow])
@given(sales_datasets(max_rows=25, files=(1, 3), error_rate=0.3, duplicate_rate=0.3))
def test_oracle_equals_model_on_dirty_data(dataset: SalesDataset) -> None:
    got = _both(dataset)
    if got is None:
        return
    oracle, model = got
    divergence = compare(oracle, model)
    assert divergence.ok, f"oracle vs model on\n{dataset!r}\n{divergence.render()}"


@settings(max_examples=examples_for("fast"), suppress_health_check=[HealthCheck.too_slow])
@given(sales_datasets(max_rows=25, files=1, error_rate=0.0, duplicate_rate=0.2))
def test_oracle_equals_model_on_clean_data(dataset: SalesDataset) -> None:
    got = _both(dataset)
    assert got is not None
    oracle, model = got
    divergence = compare(oracle, model)
    assert divergence.ok, f"oracle vs model on\n{dataset!r}\n{divergence.render()}"


@settings(max_examples=examples_for("fast") // 2)
@given(st.binary(max_size=300), st.sampled_from([b"", b"\xef\xbb\xbf"]))
def test_oracle_and_model_agree_on_arbitrary_bytes_after_a_header(body: bytes, bom: bytes) -> None:
    header = (b"event_id,order_id,customer_id,product_id,category,region,channel,"
              b"quantity,unit_price,discount,currency,event_time\n")
    got = _both(SalesDataset(files=(("x.csv", bom + header + body),)))
    if got is None:
        return
    oracle, model = got
    divergence = compare(oracle, model)
    assert divergence.ok, divergence.render()
