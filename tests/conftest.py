"""Test-suite wiring. The fixtures, profiles, markers and report header come from
the pipeline-props pytest plugin (src/pipeline_props/testing/plugin.py), which
a team's own suite gets the same way after `pip install pipeline-props`."""

from __future__ import annotations

import sys
from pathlib import Path

# tests/reference_model.py and friends are imported as plain modules.
sys.path.insert(0, str(Path(__file__).parent))
