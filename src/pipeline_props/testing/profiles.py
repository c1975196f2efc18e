"""The Hypothesis profiles of pipeline-props, registered in this one place.

``dev`` is quick, ``ci`` keeps the whole suite within its budget on a 2-core
machine, ``thorough`` is for nightly runs. Every profile keeps Hypothesis'
example database (``.hypothesis/examples`` unless ``HYPOTHESIS_DATABASE``
names another folder), so a failure replays first on the next run, and has no
deadline: examples that touch services take as long as the services take.
Tests that are cheap scale their own ``max_examples`` with
:func:`examples_for`.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings
from hypothesis.database import DirectoryBasedExampleDatabase

PROFILES = ("dev", "ci", "thorough")

#: Examples for a full-path (services) test per profile; fast tests use a multiple.
_FULL_PATH_EXAMPLES = {"dev": 3, "ci": 8, "thorough": 60}
_FAST_EXAMPLES = {"dev": 50, "ci": 150, "thorough": 5000}


def _database() -> DirectoryBasedExampleDatabase:
    return DirectoryBasedExampleDatabase(
        os.environ.get("HYPOTHESIS_DATABASE", os.path.join(".hypothesis", "examples"))
    )


def register_profiles() -> None:
    """Register dev, ci and thorough (idempotent)."""
    common = dict(
        deadline=None,
        database=_database(),
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        print_blob=True,
    )
    settings.register_profile("dev", max_examples=_FAST_EXAMPLES["dev"], **common)
    settings.register_profile("ci", max_examples=_FAST_EXAMPLES["ci"], **common)
    settings.register_profile("thorough", max_examples=_FAST_EXAMPLES["thorough"], **common)


def current_profile() -> str:
    """Name of the loaded profile, ``dev`` when another one is active."""
    name = getattr(settings, "_current_profile", None) or "dev"
    return name if name in PROFILES else "dev"


def examples_for(tier: str) -> int:
    """max_examples for a tier (``fast`` or ``full``) under the current profile."""
    table = _FULL_PATH_EXAMPLES if tier == "full" else _FAST_EXAMPLES
    return table[current_profile()]
