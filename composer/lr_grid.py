"""Choosing a learning rate on the dev split: which rates to train, which one wins, and a grid trainer.

``choose``/``next_rates``/``at_edge`` are pure functions over ``{rate: dev loss}``: whoever trains the
rates (the fidelity study, ``train_grid`` for ``composer train --lrs`` and the ``text`` proxy) never
shows them a validation number, so the choice cannot read the scored windows.

The rule (docs/fidelity.md, "The fair recipe"): train every rate of the grid; if the best is the
lowest (highest) rate tried, also train half (twice) that rate, at most ``extend`` times; keep the rate
with the lowest dev loss (ties: the lower rate, the safer one). A diverged rate counts as infinitely bad.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

from composer.errors import UsageError

__all__ = ["choose", "next_rates", "at_edge", "lr_tag", "parse_lrs", "GridResult", "train_grid", "holds_run",
           "packs_of", "DEV_FRACTION"]

DEV_FRACTION = 0.05
"""Default share of the training text held out as the dev split when a grid is trained."""


def parse_lrs(text: str | float | tuple, flag: str = "--lrs") -> tuple[float, ...]:
    """``"1e-3,2e-3"`` -> (0.001, 0.002), sorted, distinct, each a finite rate > 0."""
    if isinstance(text, (tuple, list)):
        items = list(text)
    else:
        items = [t for t in str(text).split(",") if t.strip()]
    try:
        lrs = tuple(sorted({float(x) for x in items}))
    except ValueError:
        raise UsageError(f"{flag}: {text!r} is not a list of learning rates; write e.g. 5e-4,1e-3,2e-3") from None
    if not lrs or any(not (math.isfinite(x) and 0 < x < 1) for x in lrs):
        raise UsageError(f"{flag}: need at least one learning rate in (0, 1), got {text!r}")
    return lrs


def lr_tag(lr: float) -> str:
    """A learning rate as it appears in keys and folder names: ``0.001`` -> ``lr1e-03``."""
    return f"lr{lr:.0e}" if float(f"{lr:.0e}") == lr else f"lr{lr:.3e}"


def _finite(dev: dict[float, float]) -> dict[float, float]:
    return {lr: v for lr, v in dev.items() if v is not None and math.isfinite(v)}


def choose(dev: dict[float, float]) -> float | None:
    """The rate with the lowest dev loss (``None`` when every rate diverged or none ran)."""
    ok = _finite(dev)
    return min(ok, key=lambda lr: (ok[lr], lr)) if ok else None


def at_edge(dev: dict[float, float]) -> bool:
    """Whether the chosen rate is the lowest or highest rate tried (the grid may not bracket it)."""
    best = choose(dev)
    return best is not None and len(dev) > 1 and best in (min(dev), max(dev))


def next_rates(grid: tuple[float, ...], dev: dict[float, float], extend: int) -> list[float]:
    """Rates still to train, given the dev losses ``dev`` of the rates trained so far.

    Empty when the cell is complete: the whole grid ran and either the best rate is inside the rates
    tried, or ``extend`` rates were already added past the edges.
    """
    missing = [lr for lr in grid if lr not in dev]
    if missing:
        return missing
    added = len([lr for lr in dev if lr not in grid])
    best = choose(dev)
    if best is None or added >= extend or len(dev) < 2:
        return []
    if best == min(dev):
        return [_round(best / 2)]
    if best == max(dev):
        return [_round(best * 2)]
    return []


def _round(lr: float) -> float:
    """Three significant digits, so a halved 5e-4 is 2.5e-4 and keys stay readable."""
    return float(f"{lr:.3g}")


@dataclasses.dataclass(frozen=True)
class GridResult:
    """A trained grid: every rate's dev loss, the chosen rate and its run, scored on validation."""

    dev: dict[float, float]
    """Dev loss of every rate trained (``inf``: diverged)."""
    lr: float
    """The chosen rate (lowest dev loss)."""
    at_edge: bool
    """Whether the chosen rate is still the lowest or highest tried."""
    result: object
    """The chosen run's ``TrainResult`` (its ``eval_loss`` is its dev loss)."""
    val_loss: float
    val_accuracy: float
    val_loss_se: float
    out_dir: str
    """The chosen run's folder."""

    def to_dict(self) -> dict:
        return {"lrs": {f"{k:g}": (v if math.isfinite(v) else None) for k, v in sorted(self.dev.items())},
                "lr": self.lr, "lr_at_edge": self.at_edge, "dev_loss": self.dev[self.lr],
                "val_loss": self.val_loss, "val_accuracy": self.val_accuracy, "val_loss_se": self.val_loss_se,
                "out_dir": self.out_dir, "chosen_run": self.result.to_dict()}


def holds_run(out_dir: str | Path) -> bool:
    """Whether ``out_dir`` holds a checkpoint (a run to resume or a finished one), without Orbax."""
    ckpts = Path(out_dir) / "checkpoints"
    return ckpts.is_dir() and any(p.name.isdigit() for p in ckpts.iterdir())


def packs_of(rates, pack: int) -> list[list]:
    """``rates`` in groups of at most ``pack`` (in order): what trains together."""
    rates = list(rates)
    return [rates[k:k + max(pack, 1)] for k in range(0, len(rates), max(pack, 1))]


def train_grid(spec, source, config, lrs: tuple[float, ...], *, extend: int = 1, resume: bool = False,
               progress: bool = False, say=None, pack: int = 1) -> GridResult:
    """Train ``spec`` at every rate of ``lrs`` (plus ``extend`` past an edge), each in
    ``config.out_dir/<lr_tag>/`` scored on ``source``'s dev split; score the best on validation.

    ``source`` needs a dev split (``dev_fraction > 0``). ``config.eval_batches`` sizes both scores.
    Every rate's run folder resumes on its own with ``resume``. ``pack`` > 1 trains up to that many
    rates whose folders are new in one program (``composer.packed_train``; same results to float
    rounding); a folder holding a checkpoint resumes alone. Raises ``DivergenceError`` when every rate
    diverged.
    """
    from composer.errors import DivergenceError
    from composer.train import evaluate_run, train

    if not config.out_dir:
        raise UsageError("a learning-rate grid needs a run folder (--out) to keep one run per rate")
    if config.eval_batches < 1:
        raise UsageError("a learning-rate grid needs --eval-batches >= 1 to score each rate on the dev split")
    root = Path(config.out_dir)
    dev: dict[float, float] = {}
    results: dict[float, object] = {}
    errors: list[str] = []
    while todo := next_rates(tuple(lrs), dev, extend):
        fresh = [lr for lr in todo if not holds_run(root / lr_tag(lr))] if pack > 1 else []
        for group in packs_of(fresh, pack):
            if len(group) < 2:
                continue
            from composer.packed_train import train_packed

            if say:
                say(f"learning rates {', '.join(f'{x:g}' for x in group)}: training packed, scored on the dev split")
            out = train_packed(spec, source, config.replace(eval_split="dev"), [(config.seed, lr) for lr in group],
                               out_dirs=[str(root / lr_tag(lr)) for lr in group])
            for lr, r in zip(group, out):
                if isinstance(r, DivergenceError):
                    dev[lr] = math.inf
                    errors.append(str(r))
                else:
                    results[lr], dev[lr] = r, r.eval_loss
        for lr in (x for x in todo if x not in dev):
            if say:
                say(f"learning rate {lr:g}: training, scored on the dev split")
            run = config.replace(lr=lr, eval_split="dev", out_dir=str(root / lr_tag(lr)))
            try:
                results[lr] = train(spec, source, run, resume=resume, progress=progress)
                dev[lr] = results[lr].eval_loss
            except DivergenceError as e:
                dev[lr] = math.inf
                errors.append(str(e))
    best = choose(dev)
    if best is None:
        raise DivergenceError(f"every learning rate diverged ({', '.join(f'{x:g}' for x in sorted(dev))}): "
                              f"{errors[-1] if errors else ''}")
    chosen = config.replace(lr=best, out_dir=str(root / lr_tag(best)))
    loss, acc, se = evaluate_run(spec, source, chosen, "validation")
    return GridResult(dev=dev, lr=best, at_edge=at_edge(dev), result=results[best], val_loss=loss,
                      val_accuracy=acc, val_loss_se=se, out_dir=chosen.out_dir)
