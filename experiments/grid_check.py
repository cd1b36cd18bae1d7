"""The grid check of the fair study: is the rate chosen at the main budget still the best at a longer one?

    python experiments/grid_check.py experiments/results/fidelity_fair experiments/results/fidelity_grid4m \\
        experiments/results/fidelity-grid4m-AAMMMM experiments/results/fidelity-grid4m-MMMMAA \\
        experiments/results/fidelity-grid4m-AAMMMM-up

The fair study tunes each layout's peak rate once (first seed, main budget) and trains longer budgets
at that rate. The check trains, at a longer budget and on the first seed, the grid neighbours of a
layout's chosen rate (``make fidelity-grid``; a layout's rates may come from several studies); the
chosen rate's own run at that budget is the fair study's (same seed, recipe, dev split and tokens).
This script puts the rates side by side on the dev split, names each layout's best rate, what training
at the main budget's choice gives up, and the pair's validation difference at each layout's best rate
with the fair study's pooled seed SD at that budget. Writes ``<out>.md`` and ``<out>.json``; reads
the committed tables (the study's folder under ``--runs-dir``, default ``runs``, only to score a best
rate on validation that its study has not scored yet; that number is kept in ``<out>_val.json``).
"""

from __future__ import annotations

import json
import math
import sys
from dataclasses import asdict, dataclass, replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from search import stats  # noqa: E402
from search.results.parquet import read_parquet  # noqa: E402


@dataclass(frozen=True)
class LayoutCheck:
    """One layout's rates at the longer budget, each with its dev loss (nats/byte)."""

    layout: str
    tokens: int
    seed: int
    main_rate: float
    """The rate chosen at the main budget, and trained at the longer one by the fair study."""
    dev: dict[float, float]
    """Rate -> dev loss at the longer budget (the main rate's from the fair study)."""
    best_rate: float
    steps_moved: float
    """log2(best / main): 0 when the main budget's choice is still the best; negative: it moved down."""
    shortcut_cost: float
    """Dev loss at the main budget's rate minus that at the best rate (>= 0)."""
    best_val_loss: float
    """Validation loss of the best rate's run (the fair study's, or the neighbour study's chosen run)."""
    bracketed: bool
    """The best rate has a trained neighbour on both sides (else it may lie further out)."""


def _rows(prefix: Path, suffix: str):
    path = prefix.with_name(prefix.name + suffix)
    if not path.exists():
        raise SystemExit(f"grid_check: {path} is missing; run `make fidelity-grid` (or `make fidelity`) first")
    return read_parquet(path)


def check_layout(fair, grid_rows, grid_truth, layout: str, tokens: int, seed: int) -> LayoutCheck | None:
    """The rates of ``layout`` at ``tokens`` on ``seed``; ``None`` while a neighbour run is missing."""
    base = fair[(fair.layout == layout) & (fair.tokens == tokens) & (fair.seed == seed) & (fair.status == "ok")]
    if base.empty:
        raise SystemExit(f"grid_check: the fair study has no finished {layout} seed {seed} run at {tokens:,} tokens")
    main = base.iloc[0]
    dev = {float(main.lr): float(main.dev_loss)}
    val = {float(main.lr): float(main.val_loss)}
    mine = grid_rows[(grid_rows.layout == layout) & (grid_rows.seed == seed) & (grid_rows.tokens == tokens)]
    for r in mine.itertuples():
        if r.status == "ok" and r.dev_loss is not None and math.isfinite(r.dev_loss):
            dev[float(r.lr)] = float(r.dev_loss)
    chosen = grid_truth[(grid_truth.layout == layout) & (grid_truth.seed == seed) & (grid_truth.tokens == tokens)]
    for r in chosen.itertuples():
        if r.lr is not None and r.val_loss is not None and math.isfinite(r.val_loss):
            val[float(r.lr)] = float(r.val_loss)
    if len(dev) < 3:
        return None
    best = min(dev, key=lambda lr: (dev[lr], lr))
    rates = sorted(dev)
    return LayoutCheck(layout=layout, tokens=tokens, seed=seed, main_rate=float(main.lr), dev=dev, best_rate=best,
                       steps_moved=math.log2(best / float(main.lr)),
                       shortcut_cost=dev[float(main.lr)] - dev[best],
                       best_val_loss=val.get(best, math.nan),
                       bracketed=rates[0] < best < rates[-1])


def score_run_on_validation(study_dir: Path, row) -> float:
    """Validation loss of the finished grid run ``row`` (an ``lr_grid.parquet`` row) of the study in
    ``study_dir``, scored as the study scores a cell's chosen run (``search.fidelity.runs.validation_score``).

    A grid whose study has not finished its cell (a rate still queued) has no validation score for
    its best rate yet; the check needs one for the pair at each layout's best rate."""
    from composer.data import CorpusSource
    from search.fidelity import runs
    from search.fidelity.plan import FidelitySettings

    s = FidelitySettings.from_dict(json.loads((study_dir / "settings.json").read_text()))
    source = CorpusSource(s.corpus, dev_fraction=s.dev_fraction)
    config = s.train_config(int(row.tokens), seed=int(row.seed), lr=float(row.lr))
    spec = runs.extrapolated(row.layout, s).spec
    return float(runs.validation_score(spec, s, source, config, study_dir / "train" / row.folder)[0])


def pair_at_best(a: LayoutCheck, b: LayoutCheck, sd: float, df: int) -> dict:
    """``a`` minus ``b`` in validation loss, each at its best rate, with the pooled seed SD's interval."""
    return stats.pooled_difference({a.seed: a.best_val_loss}, {b.seed: b.best_val_loss}, sd, df)


def _pooled_at(summary: dict, tokens: int) -> tuple[float, int]:
    for p in summary.get("pairs", []):
        if p["tokens"] == tokens and math.isfinite(p["pooled"]["pooled_sd"]):
            return float(p["pooled"]["pooled_sd"]), int(p["pooled"]["df"])
    return math.nan, 0


def main(argv: list[str]) -> int:
    runs_dir = "runs"
    if argv[:1] == ["--runs-dir"]:
        runs_dir, argv = argv[1], argv[2:]
    if len(argv) < 3:
        print(__doc__)
        return 2
    fair_prefix, out = Path(argv[0]), Path(argv[1])
    fair = _rows(fair_prefix, ".parquet")
    summary = json.loads(fair_prefix.with_name(fair_prefix.name + "_summary.json").read_text())
    import pandas as pd

    # One layout may have its rates in several studies (the neighbours, then a rate further out).
    grid_rows = pd.concat([_rows(prefix, "_lr_grid.parquet").assign(study=prefix.name)
                           for prefix in map(Path, argv[2:])], ignore_index=True)
    truths = [read_parquet(p) for p in (Path(a).with_name(Path(a).name + ".parquet") for a in argv[2:]) if p.exists()]
    grid_truth = (pd.concat(truths, ignore_index=True) if truths else
                  pd.DataFrame(columns=["layout", "tokens", "seed", "lr", "val_loss"]))
    checks: list[LayoutCheck] = []
    waiting = []
    for (layout, tokens, seed), _ in grid_rows.groupby(["layout", "tokens", "seed"], sort=False):  # Makefile order
        c = check_layout(fair, grid_rows, grid_truth, layout, int(tokens), int(seed))
        (checks.append(c) if c else waiting.append(f"{layout} seed {seed} at {int(tokens):,}"))
    # Best rates whose study has not scored them on validation (a rate of the cell still queued):
    # scored here from the run folder when it is in this checkout, and kept in <out>_val.json so a
    # fresh clone (no run folders) reads the same number.
    val_path = out.with_name(out.name + "_val.json")
    stored = json.loads(val_path.read_text()) if val_path.exists() else {}
    for i, c in enumerate(checks):
        if math.isfinite(c.best_val_loss):
            continue
        hit = grid_rows[(grid_rows.layout == c.layout) & (grid_rows.seed == c.seed) & (grid_rows.lr == c.best_rate)]
        key = str(hit.iloc[0].key) if len(hit) else None
        if key and key not in stored:
            study = Path(runs_dir) / str(hit.iloc[0].study)
            if (study / "train" / str(hit.iloc[0].folder) / "checkpoints").is_dir():
                stored[key] = score_run_on_validation(study, hit.iloc[0])
        if key in stored:
            checks[i] = replace(c, best_val_loss=float(stored[key]))
    out.parent.mkdir(parents=True, exist_ok=True)
    if stored:
        val_path.write_text(json.dumps(stored, indent=2, sort_keys=True) + "\n")
    lines = ["# Grid check: the rate chosen at 1M against its grid neighbours at a longer budget", "",
             f"Dev loss nats/byte on seed {checks[0].seed if checks else 0}; the 1M-chosen rate's run is the fair "
             "study's own; best rate in bold. Shortcut cost: dev loss at the 1M rate minus at the best.", "",
             "| layout | tokens | 1M rate | dev loss by rate | best rate | steps moved | shortcut cost | "
             "bracketed | val loss at best |", "|---|---|---|---|---|---|---|---|---|"]
    for c in checks:
        cells = ", ".join((f"**{lr:g}: {d:.4f}**" if lr == c.best_rate else f"{lr:g}: {d:.4f}")
                          for lr, d in sorted(c.dev.items()))
        lines.append(f"| {c.layout} | {c.tokens:,} | {c.main_rate:g} | {cells} | {c.best_rate:g} | "
                     f"{c.steps_moved:+.0f} | {c.shortcut_cost:.4f} | {'yes' if c.bracketed else 'no'} | "
                     f"{c.best_val_loss:.4f} |")
    pairs = []
    if len(checks) == 2:
        sd, df = _pooled_at(summary, checks[0].tokens)
        # The later layout minus the earlier one, as the Makefile names them (MMMMAA - AAMMMM).
        p = pair_at_best(checks[1], checks[0], sd, df)
        pairs.append({"a": checks[1].layout, "b": checks[0].layout, **p})
        lines += ["", f"At each layout's best rate: {checks[1].layout} - {checks[0].layout} = {p['mean']:+.4f} "
                  f"nats/byte, 95 % CI [{p['lo']:+.4f}, {p['hi']:+.4f}] (the fair study's pooled seed SD "
                  f"{sd:.4f} at this budget, df {df}; one seed per layout)."]
    if waiting:
        lines += ["", "Still waiting for runs: " + "; ".join(waiting) + "."]
    out.with_name(out.name + ".md").write_text("\n".join(lines) + "\n")
    payload = {"layouts": [{**asdict(c), "dev": {f"{k:g}": v for k, v in sorted(c.dev.items())}} for c in checks],
               "pairs": pairs, "waiting": waiting}
    out.with_name(out.name + ".json").write_text(json.dumps(payload, indent=2) + "\n")
    print("\n".join(lines))
    return 0 if not waiting else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
