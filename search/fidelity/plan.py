"""What a fidelity study trains: its settings, its layouts and its list of (layout, seed, tokens) jobs.

Every layout is a small pattern (as the search sees it) extrapolated to ``scale`` with ``rule`` and then
matched in size to the scale's Llama shape (``match``: non-embedding parameters by default, or FLOPs per
token), exactly as a user would deploy the winner. All runs share one recipe
(``FidelitySettings.train_config``): equal tokens, warmup-stable-decay AdamW, the same fixed validation
windows; the peak learning rate is chosen per layout from the grid ``lrs`` on a dev split carved out of
the training books (docs/fidelity.md, "The fair recipe").
"""

from __future__ import annotations

import dataclasses
import math
import re
from pathlib import Path
from typing import Mapping

from composer.errors import UsageError
from composer.jsontypes import JSONObject, JSONValue
from composer.lr_grid import parse_lrs
from composer.train_config import TrainConfig

__all__ = ["FidelitySettings", "Job", "parse_tokens", "parse_seeds", "resolve_layouts", "jobs",
           "TRAJECTORY_FIELDS", "DEFAULT_LRS", "LEGACY"]

TRAJECTORY_FIELDS = ("scale", "rule", "corpus", "batch_size", "seq_len", "lr", "warmup_frac", "decay_frac",
                     "weight_decay", "grad_clip", "dtype", "val_windows", "lrs", "grid_seeds", "lr_extend",
                     "dev_fraction", "dev_windows", "match", "tie_embeddings")
"""Settings that change a run's result: a study keeps them for life (layouts, seeds, budgets may grow)."""

DEFAULT_LRS = (5e-4, 1e-3, 2e-3)
"""The study's learning-rate grid. Checked on the corpus at the ``small`` scale and 1M tokens, 1e-3 beat
the old single rate 3e-3 for attention-first layouts by 0.18 nats/byte and for MLP-first ones by 0.03,
and the search's winner was within 0.01 at both: the grid halves and doubles 1e-3, and a layout whose
best rate lands on an edge gets the next rate out (``lr_extend``), so the grid brackets every optimum."""

LEGACY = {"lrs": (), "grid_seeds": "first", "lr_extend": 0, "dev_fraction": 0.0, "dev_windows": 0, "match": "none",
          "tie_embeddings": True}
"""Values of the fields a study stored before they existed: one rate for all, no dev split, no matching."""

GRID_SEEDS = ("first", "all")

RECIPE = ("batch_size", "seq_len", "lr", "warmup_frac", "decay_frac", "weight_decay", "grad_clip", "dtype")
"""The ``TrainConfig`` fields a study sets (stored flat in ``settings.json``, given as flags)."""

STUDY_TRAIN = TrainConfig(batch_size=16, seq_len=256, eval_every=0, eval_batches=0, log_every=10)
"""Every study run's recipe before its own steps, seed, rate and folder: no evaluation while training
(the chosen run is scored once at the end), the optimiser of ``composer train``."""


def parse_tokens(text: str | int, flag: str = "--tokens") -> int:
    """``"1M"`` -> 1,000,000; ``"262144"``, ``"4M"``, ``"0.5M"``, ``"200k"`` likewise (decimal units)."""
    if isinstance(text, int):
        value = text
    else:
        m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([kKmMgG]?)\s*", str(text))
        if not m:
            raise UsageError(f"{flag}: {text!r} is not a token count; write e.g. 1M, 4M, 500k or 262144")
        value = round(float(m.group(1)) * {"": 1, "k": 1e3, "m": 1e6, "g": 1e9}[m.group(2).lower()])
    if value < 1:
        raise UsageError(f"{flag}: must be at least 1 token, got {text!r}")
    return int(value)


def parse_seeds(text: str | int, flag: str = "--seeds") -> tuple[int, ...]:
    """``"2"`` -> (0, 1); ``"0,3,5"`` -> (0, 3, 5)."""
    text = str(text).strip()
    try:
        if "," in text:
            seeds = tuple(int(s) for s in text.split(",") if s.strip())
        else:
            seeds = tuple(range(int(text)))
    except ValueError:
        raise UsageError(f"{flag}: {text!r} is neither a count (2) nor a list of seeds (0,1,2)") from None
    if not seeds or min(seeds) < 0 or len(set(seeds)) != len(seeds):
        raise UsageError(f"{flag}: need at least one distinct seed >= 0, got {text!r}")
    return seeds


@dataclasses.dataclass(frozen=True)
class FidelitySettings:
    """The recipe shared by every ground-truth run of a study (stored in ``settings.json``)."""

    scale: str = "small"
    rule: str = "auto"
    corpus: str = "gutenberg"
    train: TrainConfig = STUDY_TRAIN
    """The training recipe of every run (``RECIPE`` fields set by the study; steps, seed, rate and folder
    per run: ``train_config``)."""
    val_windows: int = 512
    """Fixed validation windows of ``seq_len`` tokens, evenly spread over the held-out books (0: all)."""
    lrs: tuple[float, ...] = DEFAULT_LRS
    """Learning-rate grid: each layout trains at every rate and keeps the best on the dev split.
    Empty: every run at ``lr`` and no dev split (how studies ran before the grid)."""
    grid_seeds: str = "first"
    """``first``: the grid runs on the first seed at the main budget; other seeds and longer budgets train
    at that seed's chosen rate. ``all``: every (layout, seed, budget) runs the whole grid."""
    lr_extend: int = 1
    """Rates added past an edge of the grid when the best rate is on it (halving or doubling it)."""
    dev_fraction: float = 0.05
    """Share of every training book held out as the dev split (no batch trains on it)."""
    dev_windows: int = 256
    """Fixed windows of the dev split each grid run is scored on."""
    match: str = "params"
    """Size matching to the scale's Llama shape: ``params``, ``flops`` or ``none`` (``scaling.matching``)."""
    tie_embeddings: bool = True
    """Whether the LM head shares the embedding matrix (the untied check of docs/fidelity.md)."""

    def __post_init__(self):
        from composer.presets import get_scale
        from scaling.extrapolate import RULES
        from scaling.matching import MATCHES

        get_scale(self.scale)
        if self.rule not in RULES:
            raise UsageError(f"--rule: unknown rule {self.rule!r}; valid rules: {', '.join(RULES)}")
        if self.val_windows < 0:
            raise UsageError(f"--val-windows: must be >= 0 (0: the whole validation split), got {self.val_windows}")
        if self.match not in MATCHES:
            raise UsageError(f"--match: unknown match {self.match!r}; valid: {', '.join(MATCHES)}")
        if self.grid_seeds not in GRID_SEEDS:
            raise UsageError(f"--grid-seeds: must be one of {', '.join(GRID_SEEDS)}, got {self.grid_seeds!r}")
        object.__setattr__(self, "lrs", parse_lrs(self.lrs) if self.lrs else ())
        if self.lrs and not self.dev_fraction:
            raise UsageError("--dev-fraction: a learning-rate grid needs a dev split to choose on (e.g. 0.05); "
                             "for one rate for all, give --lrs with one rate")
        if not 0 <= self.dev_fraction < 0.5:
            raise UsageError(f"--dev-fraction: must be in [0, 0.5), got {self.dev_fraction}")
        if self.lr_extend < 0 or (self.lrs and self.dev_windows < 1):
            raise UsageError(f"--lr-extend must be >= 0 and --dev-windows >= 1, got {self.lr_extend} and "
                             f"{self.dev_windows}")
        self.train_config(1)  # validates the optimiser fields with TrainConfig's own messages
        for lr in self.lrs:
            self.train_config(1, lr=lr)

    @classmethod
    def of(cls, **flat) -> FidelitySettings:
        """From flat fields as flags and ``settings.json`` name them (``batch_size=8``, not ``train=``)."""
        recipe = {k: flat.pop(k) for k in RECIPE if k in flat}
        return cls(**flat, train=dataclasses.replace(flat.pop("train", STUDY_TRAIN), **recipe))

    @staticmethod
    def default(name: str) -> JSONValue:
        """A field's default as ``--help`` shows it (``RECIPE`` fields from ``STUDY_TRAIN``)."""
        if name in RECIPE:
            return getattr(STUDY_TRAIN, name)
        return {f.name: f.default for f in dataclasses.fields(FidelitySettings)}[name]

    @property
    def tuned(self) -> bool:
        """Whether runs choose their learning rate on the dev split (a grid, even of one rate)."""
        return bool(self.lrs)

    def steps(self, tokens: int) -> int:
        """Optimiser updates for a budget of ``tokens`` (rounded up to whole batches)."""
        return max(1, math.ceil(tokens / (self.train.batch_size * self.train.seq_len)))

    def train_config(self, tokens: int, *, seed: int = 0, out_dir: str | None = None,
                     lr: float | None = None) -> TrainConfig:
        """The run of ``tokens`` at ``seed`` (and ``lr``, else the recipe's), checkpointed four times."""
        steps = self.steps(tokens)
        return dataclasses.replace(self.train, steps=steps, lr=lr or self.train.lr, seed=seed, out_dir=out_dir,
                                   checkpoint_every=max(1, steps // 4))

    def to_dict(self) -> JSONObject:
        """The flat form of ``settings.json`` (the recipe's fields beside the study's own)."""
        d: JSONObject = {}
        for f in dataclasses.fields(self):
            if f.name == "train":
                d.update({k: getattr(self.train, k) for k in RECIPE})
            else:
                d[f.name] = getattr(self, f.name)
        d["lrs"] = list(self.lrs)
        return d

    @classmethod
    def from_dict(cls, data: Mapping[str, JSONValue]) -> FidelitySettings:
        """A stored study's settings; fields it predates take their ``LEGACY`` values, not today's defaults."""
        names = {f.name for f in dataclasses.fields(cls)} | set(RECIPE)
        fields = {**LEGACY, **{k: v for k, v in data.items() if k in names}}
        fields["lrs"] = tuple(fields["lrs"])
        return cls.of(**fields)

    def differences(self, other: FidelitySettings) -> list[str]:
        """Fields of ``TRAJECTORY_FIELDS`` on which these (given) settings and the ``other`` (stored) differ."""
        from search.settings import stored_differences

        flat = lambda s: {**s.to_dict(), "lrs": s.lrs}  # noqa: E731  (tuples, as the flags give them)
        return stored_differences(flat(other), flat(self), TRAJECTORY_FIELDS)


@dataclasses.dataclass(frozen=True, order=True)
class Job:
    """One ground-truth training run."""

    tokens: int
    seed: int
    layout: str
    """The small pattern as the search scored it (e.g. ``AAAMMM``)."""

    @property
    def key(self) -> str:
        return f"{self.layout}/s{self.seed}/t{self.tokens}"

    @property
    def folder(self) -> str:
        return f"{self.layout}-s{self.seed}-t{self.tokens}"


def _patterns(text: str) -> list[str]:
    from composer.spec import parse_pattern

    out = []
    for item in text.split(","):
        if item.strip():
            out.append("".join(parse_pattern(item.strip())))
    return out


def _from_run(run_dir: Path, top: int) -> tuple[list[str], str | None]:
    """The ``top`` best layouts of a search run by mean proxy score, its winner, and the Llama layout."""
    from composer.presets import layout
    from search.fidelity.proxy import leaderboard_scores

    scores = leaderboard_scores(run_dir)
    if top < 1:
        raise UsageError(f"--top: must be >= 1, got {top}")
    ranked = sorted(scores, key=lambda p: -scores[p].mean)
    if top > len(ranked):
        raise UsageError(f"--top {top}: run {run_dir.name!r} has only {len(ranked)} scored layouts; "
                         f"use --top {len(ranked)} or less")
    chosen = ranked[:top]
    winner = _run_winner(run_dir)
    depth = len(chosen[0])
    extra = [p for p in (winner, layout("llama", depth)) if p]
    return list(dict.fromkeys(chosen + extra)), winner


def _run_winner(run_dir: Path) -> str | None:
    import json

    path = run_dir / "summary.json"
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text())["proxy"]["pattern"]
    except (ValueError, KeyError, TypeError):
        return None


def resolve_layouts(*, patterns: str | None = None, layouts: str | None = None, depth: int = 6,
                    from_run: Path | None = None, top: int | None = None) -> list[str]:
    """The study's small layouts, in the order given, without repeats."""
    from composer.presets import layout

    out: list[str] = []
    if patterns:
        out += _patterns(patterns)
    if layouts:
        out += [layout(name.strip(), depth) for name in layouts.split(",") if name.strip()]
    if from_run is not None:
        if top is None:
            raise UsageError("--from-run needs --top K (how many of its best layouts to train)")
        out += _from_run(from_run, top)[0]
    if not out:
        raise UsageError("give the layouts to compare: --patterns P1,P2, --layouts NAME1,NAME2 or "
                         "--from-run RUN --top K")
    return list(dict.fromkeys(out))


def jobs(layouts: list[str], seeds: tuple[int, ...], tokens: int, long_layouts: list[str] = (),
         long_tokens: int | None = None, long_seeds: tuple[int, ...] = (0,), *,
         rungs: list[tuple[int, list[str], tuple[int, ...]]] = ()) -> list[Job]:
    """Every run, in the order trained: one seed of every layout before the next seed, long runs last and
    the further ``rungs`` (tokens, layouts, seeds) of the ladder after them, so a study stopped part-way
    already ranks every layout."""
    ladder = [(long_tokens, long_layouts, long_seeds)] if long_tokens else []
    out = [Job(tokens, s, p) for s in seeds for p in layouts]
    for rung_tokens, rung_layouts, rung_seeds in [*ladder, *rungs]:
        out += [Job(rung_tokens, s, p) for s in rung_seeds for p in rung_layouts]
    return list(dict.fromkeys(out))
