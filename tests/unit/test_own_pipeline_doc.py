"""docs/own-pipeline.md is followed as written: its python blocks run, its py blocks compile."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

DOC = Path(__file__).resolve().parents[2] / "docs" / "own-pipeline.md"
BLOCK = re.compile(r"^```(python|py)\n(.*?)^```$", re.S | re.M)


def _blocks(kind: str) -> list[str]:
    return [code for lang, code in BLOCK.findall(DOC.read_text(encoding="utf-8")) if lang == kind]


def test_the_page_has_runnable_snippets() -> None:
    assert len(_blocks("python")) >= 3 and len(_blocks("py")) >= 3


def test_the_python_snippets_run_in_order() -> None:
    namespace: dict[str, object] = {"__name__": "own_pipeline_doc"}
    for code in _blocks("python"):
        exec(compile(code, str(DOC), "exec"), namespace)  # noqa: S102 - our own documentation
    assert "TeamPipeline" in namespace


def test_the_adapter_is_about_30_lines() -> None:
    adapter = next(c for c in _blocks("python") if "class TeamPipeline" in c)
    body = adapter[adapter.index("class TeamPipeline"):]
    assert len([line for line in body.splitlines() if line.strip()]) <= 30


def test_the_service_snippets_compile() -> None:
    for code in _blocks("py"):
        compile(code, str(DOC), "exec")
