"""pytest plugin (entry point ``pytest11``): profiles now, fixtures as they land."""

from __future__ import annotations

from pipeline_props.testing.profiles import register_profiles

register_profiles()
