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

from pipeline_props.errors import UsageError

PROFILES = ("dev", "ci", "thorough")
#: What the pytest plugin loads when no ``--hypothesis-profile`` is given.
DEFAULT_PROFILE = "dev"

#: Examples per tier and profile. ``full``: the main full-path property (every
#: table equals the oracle), one pipeline run per example on the shared stream
#: (about 0.5 s); ``metamorphic``: each full-path property that runs the
#: pipeline twice per example; ``fast``: tests without services (a multiple of it).
_TIERS = {
    "fast": {"dev": 50, "ci": 150, "thorough": 5000},
    "full": {"dev": 10, "ci": 200, "thorough": 1000},
    "metamorphic": {"dev": 4, "ci": 25, "thorough": 200},
}


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
    for profile in PROFILES:
        settings.register_profile(profile, max_examples=_TIERS["fast"][profile], **common)


def current_profile() -> str:
    """Name of the loaded profile, ``dev`` when another one is active."""
    name = getattr(settings, "_current_profile", None) or "dev"
    return name if name in PROFILES else "dev"


def examples_for(tier: str) -> int:
    """max_examples for a tier (``fast``, ``full`` or ``metamorphic``) under the current profile."""
    if tier not in _TIERS:
        raise UsageError(f"examples_for: tier={tier!r} must be one of {sorted(_TIERS)}")
    return _TIERS[tier][current_profile()]
