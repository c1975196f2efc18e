"""The pipeline protocol, where a team's test suite looks for it.

It is defined in :mod:`pipeline_props.protocol`, low in the package, so that
pipelines, the fault tier, the runner and the checks share one definition
without importing the testing layer; this module re-exports it unchanged.
"""

from pipeline_props.protocol import *  # noqa: F403
from pipeline_props.protocol import __all__  # noqa: F401
