"""The plugin's default Hypothesis profile (unit): no deadline unless the user names a profile."""

from __future__ import annotations

import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import pytest

_SLOW_EXAMPLE = textwrap.dedent(
    """
    import time
    from hypothesis import given, settings, strategies as st

    def test_the_loaded_profile_has_no_deadline():
        assert settings().deadline is None, settings._current_profile

    @settings(max_examples=2)
    @given(st.none())  # nothing to shrink: one failure, no search
    def test_an_example_as_slow_as_a_service(n):
        time.sleep(0.3)
    """
)


def _pytest(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly", *args, str(folder)],
        cwd=folder, capture_output=True, text=True, timeout=120,
        env={"HYPOTHESIS_DATABASE": str(folder / "db"), "PATH": "/usr/bin:/bin"},
    )


@pytest.mark.unit
def test_without_a_named_profile_the_dev_profile_is_loaded() -> None:
    with tempfile.TemporaryDirectory(prefix="pp-profile-") as tmp:
        folder = Path(tmp)
        (folder / "test_slow.py").write_text(_SLOW_EXAMPLE)
        plain = _pytest(folder)
        assert plain.returncode == 0, plain.stdout[-2000:]
        # a profile the user names wins, Hypothesis' own default included (and its 200 ms deadline)
        named = _pytest(folder, "--hypothesis-profile=default")
        assert named.returncode == 1, named.stdout[-2000:]
        assert "DeadlineExceeded" in named.stdout
