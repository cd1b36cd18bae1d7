"""Load a run folder into frames: the leaderboard, the per-layout view, the summary and fidelity."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pandas as pd

from composer.errors import UsageError
from composer.jsontypes import JSONObject
from search.results.parquet import read_parquet

__all__ = ["Run", "load_run", "resolve_run"]


@dataclasses.dataclass
class Run:
    """What a run folder holds (``fidelity`` only when ``composer fidelity`` wrote one there)."""

    path: Path
    leaderboard: pd.DataFrame
    layouts: pd.DataFrame
    summary: JSONObject
    """``summary.json`` as read (empty when the run has not finished)."""
    fidelity: pd.DataFrame | None = None

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def ok(self) -> pd.DataFrame:
        return self.leaderboard[self.leaderboard["status"] == "ok"]


def resolve_run(run: str | Path, runs_dir: str | Path = "runs") -> Path:
    """A run folder given as a path or as a name under ``runs_dir``; a clear error when there is none."""
    path = Path(run)
    if not path.is_dir():
        path = Path(runs_dir) / str(run)
    if not (path / "leaderboard.parquet").exists():
        raise UsageError(f"RUN: no search run at {run!r} (looked for {path}/leaderboard.parquet); give a run "
                         f"folder or a name under {runs_dir}/")
    return path


def load_run(run: str | Path, runs_dir: str | Path = "runs", fidelity: str | Path | None = None) -> Run:
    """Every table of a run; the per-layout view is recomputed from the leaderboard.

    ``fidelity`` names a ``composer fidelity`` study (folder, or name under ``runs_dir``) whose ground
    truth is shown beside the run's proxy scores.
    """
    path = resolve_run(run, runs_dir)
    try:
        board = read_parquet(path / "leaderboard.parquet")
    except (OSError, ValueError) as e:  # pyarrow's ArrowInvalid is a ValueError
        raise UsageError(f"RUN: {path / 'leaderboard.parquet'} cannot be read ({type(e).__name__}); it is rebuilt "
                         f"from the run's study: composer leaderboard {path} --rebuild"
                         ) from None
    return _loaded(path, board, fidelity, runs_dir)


def _loaded(path: Path, board: pd.DataFrame, fidelity, runs_dir) -> Run:
    from search.results.layout_view import per_layout
    from search.results.records import Row

    if not (board["status"] == "ok").any():
        raise UsageError(f"RUN: the leaderboard of {path.name!r} has no successful evaluation yet (empty)")
    layouts = pd.DataFrame([v.to_dict() for v in per_layout(Row.many(board.to_dict("records")))])
    summary = json.loads((path / "summary.json").read_text()) if (path / "summary.json").exists() else {}
    table = _fidelity_table(path, fidelity, runs_dir)
    return Run(path=path, leaderboard=board, layouts=layouts, summary=summary, fidelity=table)


def _fidelity_table(path: Path, fidelity: str | Path | None, runs_dir: str | Path) -> pd.DataFrame | None:
    if fidelity is None:
        found = path / "fidelity.parquet"
        return read_parquet(found) if found.exists() else None
    study = Path(fidelity) if Path(fidelity).is_dir() else Path(runs_dir) / str(fidelity)
    if not (study / "fidelity.parquet").exists():
        raise UsageError(f"--fidelity: no fidelity study at {fidelity!r} (looked for {study}/fidelity.parquet)")
    return read_parquet(study / "fidelity.parquet")

