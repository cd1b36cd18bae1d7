"""``TrainConfig`` (what ``composer train`` runs) and ``TrainResult`` (what it reports)."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from composer.errors import UsageError

__all__ = ["DTYPES", "TrainConfig", "TrainResult"]

DTYPES = ("float32", "bfloat16")
"""Compute dtypes, by their ``jax.numpy`` names (names, so the config loads no JAX); parameters and
optimiser state always stay float32."""

# Fields that change neither the optimiser nor the compiled step (they may differ on resume too).
_BOOKKEEPING = ("eval_every", "eval_batches", "eval_split", "checkpoint_every", "keep_checkpoints", "log_every",
                "out_dir")


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """One training run. JSON (``to_dict``/``from_dict``) is only its serialisation."""

    steps: int = 200
    """Optimiser updates."""
    batch_size: int = 16
    """Sequences per update."""
    seq_len: int = 128
    """Tokens per sequence (each row holds ``seq_len + 1`` tokens: inputs and shifted targets)."""
    lr: float = 3e-3
    """Peak learning rate of the warmup-stable-decay schedule."""
    warmup_frac: float = 0.1
    """Share of ``steps`` spent warming up linearly from 0 to ``lr``."""
    decay_frac: float = 0.2
    """Share of ``steps`` spent decaying linearly from ``lr`` to ``final_lr_ratio * lr``."""
    final_lr_ratio: float = 0.0
    """Learning rate at the end of the decay, as a fraction of ``lr``."""
    weight_decay: float = 0.1
    """Decoupled AdamW weight decay on matrices (norm gains are not decayed)."""
    b1: float = 0.9
    """Adam first-moment decay."""
    b2: float = 0.95
    """Adam second-moment decay."""
    eps: float = 1e-8
    """Adam epsilon."""
    grad_clip: float = 1.0
    """Clip gradients to this global L2 norm; 0 turns clipping off."""
    dtype: str = "float32"
    """Compute dtype, ``float32`` or ``bfloat16`` (mixed precision; parameters stay float32)."""
    eval_every: int = 100
    """Evaluate every this many steps (0: only at the end)."""
    eval_batches: int = 8
    """Validation batches per evaluation: ``eval_batches * batch_size`` fixed windows of the validation
    split, the same for every seed and every evaluation (0: no evaluation)."""
    eval_split: str = "validation"
    """Split the evaluations score: ``validation`` (held-out books), or ``dev`` (a share of the training
    books that no batch trains on; hyperparameters are chosen there, never on ``validation``)."""
    checkpoint_every: int = 100
    """Checkpoint every this many steps (0: only at the end); needs ``out_dir``."""
    keep_checkpoints: int = 2
    """Newest checkpoints kept on disk."""
    log_every: int = 10
    """Steps between host syncs: metrics of every step are fetched, checked and written then."""
    seed: int = 0
    """Seeds parameter initialisation and the data order."""
    out_dir: str | None = None
    """Run folder (config, spec, metrics, checkpoints); ``None`` keeps nothing on disk."""

    def __post_init__(self):
        ints = {"steps": 1, "batch_size": 1, "seq_len": 1, "eval_every": 0, "eval_batches": 0,
                "checkpoint_every": 0, "keep_checkpoints": 1, "log_every": 1, "seed": 0}
        for name, low in ints.items():
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < low:
                raise UsageError(f"{name}: must be an integer >= {low}, got {v!r}")
        ranges = {"lr": (0, math.inf, False), "warmup_frac": (0, 1, True), "decay_frac": (0, 1, True),
                  "final_lr_ratio": (0, 1, True), "weight_decay": (0, math.inf, True), "b1": (0, 1, True),
                  "b2": (0, 1, True), "eps": (0, 1, False), "grad_clip": (0, math.inf, True)}
        for name, (low, high, low_ok) in ranges.items():
            v = getattr(self, name)
            ok = isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
            if not ok or not (low <= v <= high) or (v == low and not low_ok):
                bound = f"[{low}, {high}]" if low_ok else f"({low}, {high}]"
                raise UsageError(f"{name}: must be a finite number in {bound}, got {v!r}")
            object.__setattr__(self, name, float(v))
        if self.warmup_frac + self.decay_frac > 1:
            raise UsageError(f"warmup_frac + decay_frac must be <= 1, got {self.warmup_frac} + {self.decay_frac}")
        if self.eval_split not in ("validation", "dev"):
            raise UsageError(f"eval_split: must be 'validation' or 'dev', got {self.eval_split!r}")
        if self.dtype not in DTYPES:
            raise UsageError(f"dtype: must be one of {', '.join(DTYPES)}, got {self.dtype!r}")

    @property
    def warmup_steps(self) -> int:
        return round(self.steps * self.warmup_frac)

    @property
    def decay_steps(self) -> int:
        return min(round(self.steps * self.decay_frac), self.steps - self.warmup_steps)

    @property
    def stable_frac(self) -> float:
        """Share of ``steps`` at the peak rate (derived, never stored)."""
        return 1.0 - self.warmup_frac - self.decay_frac

    @property
    def tokens_per_step(self) -> int:
        return self.batch_size * self.seq_len

    def schedule(self):
        """The optax learning-rate schedule of this run."""
        from composer.schedules import wsd_schedule

        return wsd_schedule(self.lr, self.steps, self.warmup_steps, self.decay_steps, self.final_lr_ratio * self.lr)

    def optimizer_view(self) -> TrainConfig:
        """This config with every field that the optimiser ignores set to its default."""
        keep = ("steps", "lr", "warmup_frac", "decay_frac", "final_lr_ratio", "weight_decay", "b1", "b2", "eps",
                "grad_clip")
        return TrainConfig(**{k: getattr(self, k) for k in keep})

    def trajectory_diff(self, other: TrainConfig) -> list[str]:
        """Fields that differ and change the loss curve (all but the bookkeeping ones)."""
        return [f.name for f in dataclasses.fields(self)
                if f.name not in _BOOKKEEPING and getattr(self, f.name) != getattr(other, f.name)]

    def replace(self, **changes) -> TrainConfig:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise UsageError(f"unknown TrainConfig field(s) {unknown}; known: {', '.join(sorted(names))}")
        return cls(**data)


@dataclasses.dataclass(frozen=True)
class TrainResult:
    """Outcome of ``train``; timings exclude evaluation and checkpointing."""

    steps: int
    """Steps completed (including those before a resume)."""
    start_step: int
    """Step this invocation started from (0, or the checkpoint it resumed)."""
    final_train_loss: float
    """Train loss of the last step (NaN if this invocation ran no step)."""
    eval_loss: float | None
    """Validation loss of the final evaluation (``None`` without evaluation)."""
    eval_accuracy: float | None
    """Validation next-token accuracy of the final evaluation."""
    tokens_per_second: float
    """Training tokens per second over the steps after the first (data included)."""
    compile_seconds: float
    """Seconds to lower and compile the train and eval steps (near 0 when cached in this process)."""
    first_step_seconds: float
    """Seconds of this invocation's first step, which also loads the executable."""
    train_seconds: float
    """Seconds spent in the train steps after the first, data included."""
    train_losses: tuple[float, ...]
    """Loss of every step run by this invocation."""
    out_dir: str | None
    """Absolute run folder, if any."""
    eval_loss_se: float | None = None
    """Standard error of ``eval_loss`` over the validation windows (sampling noise of the text)."""

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d.pop("train_losses")
        return d
