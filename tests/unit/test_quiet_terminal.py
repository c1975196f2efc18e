"""The quiet terminal of `pipeline-props run` (and `errors`, `bench`, `replay`): noise to the log file,
summary and errors to the terminal.

Each case runs in a subprocess, because it redirects file descriptors 1 and 2
(which pytest's own capture also uses), and a child process stands in for
Spark's JVM: it inherits the descriptors, as the JVM does.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from pipeline_props.logcapture import copy_segment, tail

pytestmark = pytest.mark.unit

SCRIPT = textwrap.dedent("""
    import logging, os, subprocess, sys
    from pathlib import Path
    from rich.console import Console
    from pipeline_props.cli_display import StageProgress, quiet_terminal
    from pipeline_props.errors import InfrastructureError

    log = Path(sys.argv[1])
    fail, verbose = sys.argv[2] == "fail", sys.argv[3] == "verbose"
    logging.basicConfig(level="INFO", stream=sys.stderr)
    out, err = Console(), Console(stderr=True)
    with quiet_terminal(log, [out, err], verbose=verbose, err_console=err), StageProgress(err) as bar:
        bar.callback("happy_path")("ingest", "start")
        os.write(1, b"WARN fd1 noise\\n")
        os.write(2, b"Setting default log level to WARN\\n")
        subprocess.run([sys.executable, "-c", "import sys; print('jvm child noise', file=sys.stderr)"])
        print("a library print")
        logging.getLogger("pipeline_props.x").info("an INFO log")
        bar.callback("happy_path")("ingest", "done")
        if fail:
            raise InfrastructureError("kafka", "the broker did not answer")
        bar.stop()
        out.print("SUMMARY verdict: HELD")
""")
NOISE = ["WARN fd1 noise", "Setting default log level", "jvm child noise", "a library print", "an INFO log"]


def _run(tmp_path: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], Path]:
    log = tmp_path / "run" / "logs" / "pipeline-props.log"
    proc = subprocess.run([sys.executable, "-c", SCRIPT, str(log), *args], capture_output=True, text=True,
                          timeout=120, check=False)
    return proc, log


def test_only_the_summary_reaches_the_terminal(tmp_path: Path) -> None:
    proc, log = _run(tmp_path, "ok", "quiet")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "SUMMARY verdict: HELD"
    assert proc.stderr.strip() == ""  # not a terminal: no progress display either
    text = log.read_text(encoding="utf-8")
    assert all(n in text for n in NOISE), text


def test_an_error_shows_the_log_tail_and_its_path(tmp_path: Path) -> None:
    proc, log = _run(tmp_path, "fail", "quiet")
    assert proc.returncode == 1
    assert "SUMMARY" not in proc.stdout and "noise" not in proc.stdout
    assert "jvm child noise" in proc.stderr and "an INFO log" in proc.stderr
    assert f"log: {log}" in " ".join(proc.stderr.split()) or str(log) in proc.stderr.replace("\n", "")
    assert "InfrastructureError" in proc.stderr  # the traceback itself is not swallowed


def test_verbose_keeps_the_logs_on_the_terminal(tmp_path: Path) -> None:
    proc, log = _run(tmp_path, "ok", "verbose")
    assert proc.returncode == 0, proc.stderr
    assert "jvm child noise" in proc.stderr and "Setting default log level" in proc.stderr
    assert "SUMMARY verdict: HELD" in proc.stdout
    assert "an INFO log" in log.read_text(encoding="utf-8")  # Python logging is kept in the file too


def test_log_segments_and_tail(tmp_path: Path) -> None:
    log = tmp_path / "a.log"
    log.write_text("one\n\ntwo\nthree\n", encoding="utf-8")
    assert tail(log, 2) == ["two", "three"]
    assert tail(tmp_path / "missing.log") == []
    copy_segment(log, len("one\n\n"), tmp_path / "b" / "b.log")
    assert (tmp_path / "b" / "b.log").read_text(encoding="utf-8") == "two\nthree\n"


COMMAND_SCRIPT = textwrap.dedent("""
    import logging, os, subprocess, sys
    from pathlib import Path
    from pipeline_props.commands.common import console, load_cli_settings, quiet_command

    load_cli_settings(None, "INFO")  # what every command does first: logging to stderr
    with quiet_command(Path(sys.argv[1]), verbose=sys.argv[2] == "verbose") as log:
        os.write(2, b"26/01/01 10:00:00 WARN NativeCodeLoader: Unable to load native-hadoop library\\n")
        os.write(1, b"Setting default log level to WARN\\n")
        subprocess.run([sys.executable, "-c", "import sys; print('log4j:WARN jvm child noise', file=sys.stderr)"])
        logging.getLogger("pipeline_props.x").info("an INFO log")
        console.print("RESULT scenario spark_driver_crash PASSED")
    console.print(f"LOGFILE {log}", soft_wrap=True)
""")


def test_a_command_prints_its_results_and_its_log_path_only(tmp_path: Path) -> None:
    """errors, bench and replay run their body in commands.common.quiet_command."""
    folder = tmp_path / "faults_x"
    proc = subprocess.run([sys.executable, "-c", COMMAND_SCRIPT, str(folder), "quiet"], capture_output=True,
                          text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    log = folder / "logs" / "pipeline-props.log"
    assert proc.stdout.splitlines() == ["RESULT scenario spark_driver_crash PASSED", f"log: {log}",
                                        f"LOGFILE {log}"], proc.stdout
    assert proc.stderr == ""
    text = log.read_text(encoding="utf-8")
    assert all(n in text for n in ("NativeCodeLoader", "Setting default log level", "jvm child noise",
                                   "INFO pipeline_props.x: an INFO log")), text


def test_a_verbose_command_keeps_its_logs_on_the_terminal(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-c", COMMAND_SCRIPT, str(tmp_path / "f"), "verbose"],
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "jvm child noise" in proc.stderr and "an INFO log" in proc.stderr
    assert "RESULT scenario spark_driver_crash PASSED" in proc.stdout
