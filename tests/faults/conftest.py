"""Fixtures of the fault tests: one ErrorInjector (and its proxies) per test module.

Module scope, not session: its proxies hold fixed ports (the broker's proxied
listener), which `pipeline-props errors` in a later test needs free.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from pipeline_props.testing.xdist import alone_scope


@pytest.fixture(scope=alone_scope("module"))
def fault_injector(infrastructure) -> Iterator:
    """An ErrorInjector on the session's services; every fault is healed at the end, whatever happened.

    Under pytest-xdist one per test: its proxies hold fixed ports (the broker's
    proxied listener), free again when the test, which runs alone, ends.
    """
    from pipeline_props.faults import ErrorInjector

    inj = ErrorInjector(infrastructure)
    try:
        yield inj
    finally:
        inj.close()
