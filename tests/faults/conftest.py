"""Fixtures of the fault tests: one ErrorInjector (and its proxies) per session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest


@pytest.fixture(scope="session")
def fault_injector(infrastructure) -> Iterator:
    """An ErrorInjector on the session's services; every fault is healed at the end, whatever happened."""
    from pipeline_props.faults import ErrorInjector

    inj = ErrorInjector(infrastructure)
    try:
        yield inj
    finally:
        inj.close()
