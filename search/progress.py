"""A rich progress bar on stderr: evaluations done of the budget, best score so far, ETA."""

from __future__ import annotations

from typing import Any

__all__ = ["SearchProgress"]


class SearchProgress:
    """``with SearchProgress(total, done, best) as p: p.advance(row)``; silent when ``quiet``."""

    def __init__(self, total: int, done: int = 0, best: float | None = None, *, quiet: bool = False,
                 label: str = "search"):
        self.total, self.done, self.best, self.quiet, self.label = total, done, best, quiet, label
        self._progress = None
        self._task = None

    def _best_text(self) -> str:
        return "best -" if self.best is None else f"best {self.best:.4f}"

    def __enter__(self) -> "SearchProgress":
        if self.quiet:
            return self
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self._progress = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                                  TextColumn("{task.fields[best]}"), TimeElapsedColumn(), TextColumn("ETA"),
                                  TimeRemainingColumn(), console=Console(stderr=True), transient=False)
        self._progress.__enter__()
        self._task = self._progress.add_task(self.label, total=self.total, completed=self.done,
                                             best=self._best_text())
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._progress is not None:
            self._progress.__exit__(*exc)

    def stage(self, label: str, total: int, done: int) -> None:
        self.label, self.total, self.done = label, total, done
        if self._progress is not None:
            self._progress.reset(self._task, total=total, completed=done, description=label, best=self._best_text())

    def advance(self, row) -> None:
        """One more evaluation done (``row``: its ``search.results.records.Row``)."""
        score = row.score
        if row.ok and (self.best is None or score > self.best):
            self.best = score
        self.done += 1
        if self._progress is not None:
            self._progress.update(self._task, completed=self.done, best=self._best_text())
