"""Every `pipeline-props ...` command line quoted in README.md and docs/*.md still parses.

Each command line (inline code spans, and lines of shell code blocks) is
parsed against the real CLI the way click would before running it: the
command path resolves, every option exists, values convert, arguments are
neither missing nor extra. No callback runs, so nothing starts.

Parse-only (they need services, a cluster, downloads or a run's folder):
run, services, cluster, errors --all/--scenario, bench, scaling, replay,
report, setup. Their scenario names are checked against the registries too.
Invoked for real (cheap, no services): ``errors --list`` and ``--help`` of
every command that appears.

Templates are expanded: ``a / b / c`` alternatives, ``[--opt V]`` optional
parts (kept), ``...`` (dropped), ``<id>`` and upper-case placeholders (a
sample value from PLACEHOLDERS).
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
import typer.main
from typer import TyperException
from typer.core import TyperGroup
from typer.testing import CliRunner

from pipeline_props.cli import app

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
SHELL_FENCES = {"", "bash", "sh", "shell", "console", "text"}
PLACEHOLDERS = {"SCENARIO": "happy_path", "N": "10", "S": "1", "REV": "HEAD~1", "NAME": "kafka_service_stop",
                "FILE": "a.csv", "DIR": "artifacts", "W": "duckdb"}

_FENCE = re.compile(r"^\s*```+\s*([\w+-]*)")
_INLINE = re.compile(r"`((?:\./dev\s+)?pipeline-props\s[^`]*)`")
# In a code line: the command at the start of the line, after `$ `, `./dev `, `;`, `&&`, `|` or in `$(...)`.
_IN_CODE = re.compile(r"(?:^|[;&|]\s*|\$\(|^\$\s+)\s*(?:\./dev\s+)?pipeline-props((?:\s+[^\s#)\"`;&|]+)*)")


def documented_commands() -> list[tuple[str, str]]:
    """(where, command line after `pipeline-props`) for every quoted command line, templates expanded."""
    found: list[tuple[str, str]] = []
    for doc in DOCS:
        fence: str | None = None
        for lineno, line in enumerate(doc.read_text(encoding="utf-8").splitlines(), 1):
            where = f"{doc.relative_to(ROOT)}:{lineno}"
            m = _FENCE.match(line)
            if m:
                fence = None if fence is not None else m.group(1).lower()
                continue
            if fence is None:
                raw = [re.sub(r"^(?:\./dev\s+)?pipeline-props", "", s) for s in _INLINE.findall(line)]
            elif fence in SHELL_FENCES:
                raw = [m.group(1) for m in _IN_CODE.finditer(line.strip())]
            else:
                continue
            for text in raw:
                found += [(where, variant) for variant in _expand(text)]
    return found


def _expand(text: str) -> list[str]:
    text = text.split(" #")[0].strip()
    if not text or not re.match(r"[a-z-]", text):  # prose such as "pipeline-props (driver: ...)"
        return []
    variants = [text]
    if " / " in text:  # "services up / down / status"
        first, *others = text.split(" / ")
        prefix = first.rsplit(" ", 1)[0]
        variants = [first] + [f"{prefix} {o.strip()}" for o in others]
    out = []
    for v in variants:
        v = re.sub(r"\[([^\]]*\.\.\.[^\]]*)\]", "", v)  # "[--scenario ...]": a repetition, dropped
        v = re.sub(r"\[([^\]]*)\]", r"\1", v)  # optional parts: kept
        v = re.sub(r"(?<!\S)\.\.\.(?!\S)", "", v)  # "run ... --warehouse duckdb"
        v = re.sub(r"<[^>]+>", "x", v)
        out.append(" ".join(v.split()))
    return out


def _args(line: str) -> list[str]:
    args = shlex.split(line)
    unknown = [a for a in args if re.fullmatch(r"[A-Z][A-Z_]*", a) and a not in PLACEHOLDERS]
    assert not unknown, f"add a sample value for {unknown} to PLACEHOLDERS"
    return [PLACEHOLDERS.get(a, a) for a in args]


def parse(args: list[str]) -> list[str]:
    """Parse ``args`` as click would, without running anything; return the command path."""
    command = typer.main.get_command(app)  # typer vendors its own click: use typer's classes
    ctx = command.make_context("pipeline-props", list(args))
    path = []
    while isinstance(command, TyperGroup):
        rest = [*getattr(ctx, "_protected_args", []), *ctx.args]
        name, sub, rest = command.resolve_command(ctx, rest)
        assert sub is not None and name is not None
        path.append(name)
        command = sub
        ctx = sub.make_context(name, rest, parent=ctx)
    return path


COMMANDS = documented_commands()


def test_the_docs_quote_commands() -> None:
    """The extraction finds the README's own lines (so an empty parametrization cannot pass silently)."""
    lines = {c for _, c in COMMANDS}
    assert "run --test happy_path --record-count 1000" in lines
    assert "run --input a.csv b.csv" in lines
    assert {"services up", "services down", "services status"} <= lines
    assert len(COMMANDS) >= 20


@pytest.mark.parametrize(("where", "line"), COMMANDS, ids=[f"{w} {c}" for w, c in COMMANDS])
def test_documented_command_parses(where: str, line: str) -> None:
    args = _args(line)
    try:
        path = parse(args)
    except TyperException as exc:
        message = exc.format_message() if hasattr(exc, "format_message") else repr(exc)
        pytest.fail(f"{where}: `pipeline-props {line}` no longer parses: {message}")
    if path == ["errors"] and "--scenario" in args:
        from pipeline_props.faults.cluster_scenarios import CLUSTER_SCENARIOS
        from pipeline_props.faults.scenarios import FAULT_SCENARIOS

        names = [args[i + 1] for i, a in enumerate(args) if a in ("--scenario", "-s")]
        unknown = [n for n in names if n not in FAULT_SCENARIOS and n not in CLUSTER_SCENARIOS]
        assert not unknown, f"{where}: unknown fault scenario(s) {unknown}"
    if path == ["run"] and "--test" in args:
        from pipeline_props.strategies import SCENARIOS as DATA_SCENARIOS

        name = args[args.index("--test") + 1]
        assert name == "all" or name in DATA_SCENARIOS, f"{where}: unknown scenario {name!r}"


def test_documented_commands_show_their_help() -> None:
    """``--help`` of every documented command path runs for real (exit 0)."""
    runner = CliRunner()
    paths = {tuple(parse(_args(line))) for _, line in COMMANDS}
    for path in sorted(paths):
        result = runner.invoke(app, [*path, "--help"])
        assert result.exit_code == 0, (path, result.output)


def test_errors_list_runs_for_real() -> None:
    """`pipeline-props errors --list` (quoted in docs/faults.md) needs no service: run it."""
    assert ("docs/faults.md", "errors --list") in {(w.split(":")[0], c) for w, c in COMMANDS}
    result = CliRunner().invoke(app, ["errors", "--list"])
    assert result.exit_code == 0, result.output
    assert "kafka_service_stop" in result.output


def test_a_broken_command_fails_the_parse() -> None:
    """The check has teeth: an unknown option, an extra argument and an unknown command are refused."""
    for bad in (["run", "--no-such-option"], ["replay", "a", "b"], ["nosuchcommand"]):
        with pytest.raises(TyperException):
            parse(bad)
    assert _expand("services up / down / status") == ["services up", "services down", "services status"]
