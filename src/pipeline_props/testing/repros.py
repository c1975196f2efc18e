"""Repro folders: a failing dataset written so that a person can read it and replay it.

``artifacts/repros/<id>/``::

    README.md            what failed, the replay command, an @example(...) snippet
    divergence.txt       the differing rows side by side (or the broken invariant)
    dataset.repr.txt     the dataset's readable repr
    repro.json           property, pipeline, and every dataset's files in order
    <label>/<NN>/<name>  each dataset's files, byte for byte (NN = file index)

``<id>`` is the property name and a hash of the files, so the same shrunk
failure always lands in the same folder. :func:`pipeline_props.repro.replay`
(the CLI's ``pipeline-props replay <folder>``) runs every dataset of the
folder through the pipeline and the oracle again.
"""

from __future__ import annotations

import hashlib
import json
import re
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from pipeline_props.errors import InputError, UsageError

__all__ = ["INCREMENTAL_PROPERTY", "REPRO_ROOT", "Repro", "example_snippet", "read_repro", "replay_command", "write_repro"]

#: Where repros go, relative to the working directory (or ``$E2E_ARTIFACTS_DIR``/repros).
REPRO_ROOT = Path("artifacts") / "repros"
_FORMAT = 1

Files = Sequence[tuple[str, bytes]]

#: The incremental-marts property's name: its repros hold one dataset per arrival batch
#: (``batch 1``, ``batch 2``...), which ``pipeline-props replay`` sends again in that order.
INCREMENTAL_PROPERTY = "incremental marts"


@dataclass(frozen=True)
class Repro:
    """A repro folder read back: its datasets (label -> files in order) and what failed."""

    path: Path
    property_name: str
    pipeline: str
    datasets: dict[str, tuple[tuple[str, bytes], ...]]
    divergence_text: str


def _default_root() -> Path:
    import os

    artifacts = os.environ.get("E2E_ARTIFACTS_DIR")
    return Path(artifacts) / "repros" if artifacts else REPRO_ROOT


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "property"


def repro_id(property_name: str, datasets: Mapping[str, Files]) -> str:
    """``<property slug>-<12 hex digits of the files' hash>``: stable for one failure."""
    digest = hashlib.sha256()
    for label, files in datasets.items():
        digest.update(label.encode() + b"\0")
        for name, data in files:
            digest.update(name.encode() + b"\0" + len(data).to_bytes(8, "big") + data)
    return f"{_slug(property_name)}-{digest.hexdigest()[:12]}"


def _label_dir(label: str) -> str:
    return _slug(label) if label else "dataset"


def example_snippet(files: Files, argument: str = "dataset") -> str:
    """``@example(dataset=SalesDataset(files=(...)))``: paste it above the property test."""
    inner = "".join(f"\n        ({name!r}, {data!r})," for name, data in files)
    return (f"from hypothesis import example\nfrom pipeline_props.strategies import SalesDataset\n\n"
            f"@example({argument}=SalesDataset(files=({inner}\n    )))")


def replay_command(folder: Path | str) -> str:
    """The shell command that replays ``folder``."""
    return f"pipeline-props replay {shlex.quote(str(folder))}"


def write_repro(
    datasets: Mapping[str, Files],
    *,
    property_name: str,
    divergence_text: str,
    dataset_repr: str,
    pipeline: str = "reference",
    root: Path | str | None = None,
) -> Path:
    """Write a repro folder for ``datasets`` (label -> files; one label ``""`` for one dataset).

    Returns the folder. Writing the same failure again replaces the folder's files.
    """
    if not datasets:
        raise UsageError("write_repro needs at least one dataset")
    base = Path(root) if root is not None else _default_root()
    folder = base / repro_id(property_name, datasets)
    folder.mkdir(parents=True, exist_ok=True)
    listing: dict[str, list[dict[str, Any]]] = {}
    for label, files in datasets.items():
        entries = []
        for index, (name, data) in enumerate(files):
            if "/" in name or "\\" in name or name in ("", ".", ".."):
                raise UsageError(f"file name {name!r} cannot be written into a repro folder")
            rel = Path(_label_dir(label)) / f"{index:02d}" / name
            (folder / rel).parent.mkdir(parents=True, exist_ok=True)
            (folder / rel).write_bytes(data)
            entries.append({"index": index, "name": name, "path": rel.as_posix(), "bytes": len(data),
                            "sha256": hashlib.sha256(data).hexdigest()})
        listing[label] = entries
    meta = {"format": _FORMAT, "property": property_name, "pipeline": pipeline,
            "created_at": datetime.now(timezone.utc).isoformat(), "datasets": listing}
    (folder / "repro.json").write_text(json.dumps(meta, indent=2), encoding="utf-8")
    (folder / "divergence.txt").write_text(divergence_text + "\n", encoding="utf-8")
    (folder / "dataset.repr.txt").write_text(dataset_repr + "\n", encoding="utf-8")
    first = next(iter(datasets.values()))
    labels = ", ".join(repr(label) for label in datasets if label) or "one dataset"
    readme = f"""# Repro: property {property_name!r} failed ({pipeline} pipeline)

Datasets: {labels}. Files are under `<dataset>/<file index>/<name>`, byte for byte.

## Replay

```sh
{replay_command(folder)}
```

Runs every dataset of this folder through the {pipeline} pipeline and the DuckDB
oracle again and compares them: exit 0 when they agree, 1 when they still
differ (the differing rows are printed), 2 when the services or the input are
the problem. `--warehouse duckdb|postgres` picks the warehouse path.

## Keep it as a regression example

Paste this above the property test (its dataset argument is `dataset`):

```python
{example_snippet(first)}
```

Hypothesis also keeps the failing example in `.hypothesis/examples`, so the
next run of the same test tries it first.

## What differed

See `divergence.txt`; the dataset, readable, is in `dataset.repr.txt`.
"""
    (folder / "README.md").write_text(readme, encoding="utf-8")
    return folder


def read_repro(folder: Path | str) -> Repro:
    """Read a repro folder back; InputError when it is not one or a file changed."""
    path = Path(folder)
    meta_file = path / "repro.json"
    if not meta_file.is_file():
        raise InputError(path, "not a repro folder (no repro.json)",
                         hint="give a folder under artifacts/repros/")
    try:
        meta = json.loads(meta_file.read_text(encoding="utf-8"))
        datasets: dict[str, tuple[tuple[str, bytes], ...]] = {}
        for label, entries in meta["datasets"].items():
            files = []
            for entry in sorted(entries, key=lambda e: e["index"]):
                data = (path / entry["path"]).read_bytes()
                if hashlib.sha256(data).hexdigest() != entry["sha256"]:
                    raise InputError(path / entry["path"], "changed since the repro was written "
                                     "(sha256 differs)")
                files.append((entry["name"], data))
            datasets[label] = tuple(files)
        divergence = (path / "divergence.txt").read_text(encoding="utf-8") \
            if (path / "divergence.txt").is_file() else ""
        return Repro(path=path, property_name=meta["property"], pipeline=meta.get("pipeline", "reference"),
                     datasets=datasets, divergence_text=divergence.rstrip("\n"))
    except (KeyError, TypeError, ValueError, FileNotFoundError) as exc:
        raise InputError(meta_file, f"unreadable repro: {type(exc).__name__}: {exc}") from None


