"""The ``run`` command's terminal (part of the CLI, like cli.py): stage progress, a quiet terminal, log tails.

Without ``-v`` everything but the progress display and the summary goes to
``artifacts/<run_id>/logs/pipeline-props.log``: Spark's JVM and log4j, py4j,
librdkafka, dbt, Python logging (see :mod:`pipeline_props.logcapture`). On an
error the last lines of the relevant log are shown with its path.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Self

from rich.console import Console
from rich.markup import escape
from rich.progress import Progress, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn

from pipeline_props.errors import InfrastructureError
from pipeline_props.logcapture import OutputCapture, tail

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class StageProgress:
    """A live line per stage: a spinner while it runs, a tick and its time when done.

    The display starts with the first stage and ``stop()`` clears it (before a
    summary); the next stage starts a fresh one, because a restarted rich Live
    would move the cursor over what was printed meanwhile.
    """

    def __init__(self, console: Console) -> None:
        self.console = console
        self.bar: Progress | None = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _started(self) -> Progress:
        if self.bar is None:
            self.bar = Progress(SpinnerColumn(finished_text="[green]✓[/green]"), TextColumn("{task.description}"),
                                TimeElapsedColumn(), console=self.console, transient=True,
                                disable=not self.console.is_terminal,  # a pipe or a file gets the summary only
                                # Python-level writes must reach the log file, not the terminal above the bar.
                                redirect_stdout=False, redirect_stderr=False)
            self.bar.start()
        return self.bar

    def callback(self, label: str) -> Callable[[str, str], None]:
        """A ``progress(stage, "start" | "done")`` callback for run_dataset, its lines prefixed by ``label``."""
        tasks: dict[str, tuple[Progress, TaskID]] = {}

        def progress(stage: str, what: str) -> None:
            if what == "start":
                bar = self._started()
                tasks[stage] = (bar, bar.add_task(f"{label}: {stage}" if label else stage, total=1))
            elif stage in tasks:
                bar, task = tasks[stage]
                bar.update(task, completed=1)

        return progress

    def stop(self) -> None:
        """Clear the display (before a summary or an error)."""
        if self.bar is not None:
            self.bar.stop()
            self.bar = None


@contextmanager
def quiet_terminal(log_path: Path, consoles: Sequence[Console], *, verbose: bool,
                   err_console: Console) -> Iterator[OutputCapture | None]:
    """Send fds 1 and 2 and Python logging to ``log_path``, keeping ``consoles`` on the terminal.

    With ``verbose`` nothing is redirected (the logs stay on the terminal, as
    before) and Python logging is also written to ``log_path``. On an
    exception the last lines of the relevant log and its path go to
    ``err_console``, then the exception propagates.
    """
    log_path.parent.mkdir(parents=True, exist_ok=True)
    handler: logging.Handler | None = None
    capture: OutputCapture | None = None
    saved = [getattr(c, "_file", None) for c in consoles]
    if verbose:
        handler = logging.FileHandler(log_path, encoding="utf-8")
        handler.setFormatter(logging.Formatter(LOG_FORMAT))
        logging.getLogger().addHandler(handler)
    else:
        capture = OutputCapture(log_path).__enter__()
        for c in consoles:
            c.file = capture.terminal(c.file)
    try:
        yield capture
    except BaseException as exc:
        _restore(capture, consoles, saved, handler)
        if not isinstance(exc, (KeyboardInterrupt, SystemExit)):
            show_log_tail(err_console, exc, log_path)
        raise
    _restore(capture, consoles, saved, handler)


def _restore(capture: OutputCapture | None, consoles: Sequence[Console], saved: list[object],
             handler: logging.Handler | None) -> None:
    for c, file in zip(consoles, saved):
        c.file = file  # type: ignore[assignment]  # None: rich's own default (sys.stdout or sys.stderr)
    if capture is not None:
        capture.restore()
    if handler is not None:
        logging.getLogger().removeHandler(handler)
        handler.close()


def show_log_tail(console: Console, exc: BaseException, session_log: Path, lines: int = 20) -> None:
    """The last lines of the log that explains ``exc`` (a service's own log when it names one) and its path."""
    logs = [session_log]
    if isinstance(exc, InfrastructureError) and exc.log_path:
        logs.insert(0, Path(exc.log_path))
    shown = logs[0] if tail(logs[0], 1) else session_log
    text = tail(shown, lines)
    if text:
        console.print(f"[dim]last {len(text)} lines of {escape(str(shown))}:[/dim]", highlight=False)
        for line in text:
            console.print(f"  {escape(line)}", highlight=False, soft_wrap=True)
    console.print(f"log: {escape(str(session_log))}" +
                  (f"  (service log: {escape(str(shown))})" if shown != session_log else ""), highlight=False)
