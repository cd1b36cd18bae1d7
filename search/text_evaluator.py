"""The ``text`` protocol: score a layout by how well a small byte-level LM of it models real text.

The paper's evaluator study set small real-text proxies beside MAD; this is that option on the
offline corpus (``composer.corpus``): the layout at the ``proxy`` widths with its own depth (the same
model the MAD proxy trains), trained from scratch for ``TEXT_PROTOCOL.steps`` updates on the training
books and scored on fixed validation windows of the held-out books, which no seed changes.

The objective is ``score = 1 - bpb / 8``: the share of each byte's 8 bits that the model predicts, so
higher is better, like every other protocol, and 0 is the uniform guess. ``tasks`` holds ``text_bpb``.
"""

from __future__ import annotations

import dataclasses
import math
import time
from typing import Any

from search.evaluators import Evaluation, EvaluatorConfig

__all__ = ["TextProtocol", "TEXT_PROTOCOL", "TextEvaluator", "score_from_bpb"]


@dataclasses.dataclass(frozen=True)
class TextProtocol:
    """The recipe of one ``text`` evaluation."""

    scale: str = "proxy"
    steps: int = 300
    batch_size: int = 16
    seq_len: int = 128
    lr: float = 3e-3
    val_windows: int = 256
    corpus: str = "gutenberg"


TEXT_PROTOCOL = TextProtocol()


def score_from_bpb(bpb: float) -> float:
    """``1 - bpb / 8``: 1 is a perfect predictor, 0 the uniform guess over bytes."""
    return 1.0 - bpb / 8.0


class TextEvaluator:
    """Real-text proxy behind ``search.evaluators.Evaluator`` (imports JAX)."""

    def __init__(self, config: EvaluatorConfig, protocol: TextProtocol = TEXT_PROTOCOL):
        from composer.data import CorpusSource

        self.config = config
        self.protocol = config.label
        scale = config.steps_scale or 1.0
        if scale <= 0:
            raise ValueError(f"steps_scale: must be > 0, got {scale}")
        self.recipe = dataclasses.replace(protocol, steps=max(1, round(protocol.steps * scale)))
        self.source = CorpusSource(self.recipe.corpus)

    def spec(self, pattern: str) -> Any:
        from composer.presets import spec_from_pattern

        return spec_from_pattern(pattern, self.recipe.scale)

    def __call__(self, pattern: str, seed: int | None = None) -> Evaluation:
        import jax

        from composer.spec import arch_id
        from composer.train import TrainConfig, train

        r = self.recipe
        seed = self.config.seed if seed is None else seed
        spec = self.spec(pattern)
        config = TrainConfig(steps=r.steps, batch_size=r.batch_size, seq_len=r.seq_len, lr=r.lr, seed=seed,
                             eval_every=0, eval_batches=math.ceil(r.val_windows / r.batch_size), log_every=25)
        t0 = time.perf_counter()
        result = train(spec, self.source, config)
        bpb = result.eval_loss / math.log(2)
        device = jax.devices()[0]
        return Evaluation(score=score_from_bpb(bpb), protocol=self.protocol, tasks={"text_bpb": bpb},
                          seed=seed, pattern=pattern, arch_id=arch_id(spec), steps=r.steps,
                          tokens=r.steps * config.tokens_per_step, wall_s=time.perf_counter() - t0,
                          compile_s=result.compile_seconds, device=f"{device.platform}:{device.device_kind}",
                          details={"text_bpb": bpb, "val_loss_se": result.eval_loss_se,
                                   "train_loss": result.final_train_loss, "recipe": dataclasses.asdict(r)})
