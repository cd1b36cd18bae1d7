"""The ``text`` protocol: score a layout by how well a small byte-level LM of it models real text.

The paper's evaluator study set small real-text proxies beside MAD; this is that option on the
offline corpus (``composer.corpus``): the layout at the ``proxy`` widths with its own depth (the same
model the MAD proxy trains), trained from scratch for ``TEXT_PROTOCOL.steps`` updates on the training
books and scored on fixed validation windows of the held-out books, which no seed changes.

The objective is ``score = 1 - bpb / 8``: the share of each byte's 8 bits that the model predicts, so
higher is better, like every other protocol, and 0 is the uniform guess. ``tasks`` holds ``text_bpb``.

``text-lr`` is the same recipe with the learning rate chosen per layout (``TextProtocol.lrs``): each
rate trains, each run is scored on a dev split carved from the training books, and the best rate's
run is scored on the validation windows (``composer.lr_grid.train_grid``), as MAD keeps the best of a
small learning-rate sweep per layout. It trains ``len(lrs)`` (or one more, past an edge) times the
runs of ``text``, the grid's rates packed in one program (``TextProtocol.pack_lrs``).
"""

from __future__ import annotations

import dataclasses
import math
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from composer.jsontypes import JSONObject
    from composer.train_config import TrainConfig

from search.evaluators import Evaluation, EvaluatorConfig

__all__ = ["TextProtocol", "TEXT_PROTOCOLS", "TextEvaluator", "score_from_bpb"]


def _text_train():
    from composer.train_config import TrainConfig  # imports JAX: only when a text recipe is built

    # 256 validation windows (16 batches of 16); no evaluation while training; the optimiser of
    # ``composer train``.
    return TrainConfig(steps=300, batch_size=16, seq_len=128, lr=3e-3, eval_every=0, eval_batches=16, log_every=25)


@dataclasses.dataclass(frozen=True)
class TextProtocol:
    """The recipe of one ``text`` evaluation: a ``TrainConfig`` at a scale, on a corpus."""

    scale: str = "proxy"
    train: TrainConfig = dataclasses.field(default_factory=_text_train)
    """The ``composer.train_config.TrainConfig`` of every evaluation (its seed set per evaluation)."""
    corpus: str = "gutenberg"
    lrs: tuple[float, ...] = ()
    """A learning-rate grid chosen on the dev split (empty: train at ``train.lr``)."""
    lr_extend: int = 1
    dev_fraction: float = 0.05
    """Share of every training book held out as the dev split (only with ``lrs``)."""
    pack_lrs: bool = True
    """Train the grid's rates in one program (``composer.packed_train``; the same choice and score to
    float rounding); an extension past an edge trains alone."""
    layer_options: tuple[tuple[str, tuple[tuple[str, Any], ...]], ...] = ()
    """``(shorthand, ((option, value), ...))`` pairs set on every layer of that primitive in the proxy
    model (``composer.presets.spec_from_pattern``'s ``layer_options``); empty: the primitives' defaults."""

    @property
    def layer_option_map(self) -> dict[str, dict[str, Any]]:
        """``layer_options`` as ``spec_from_pattern`` takes them: shorthand -> options."""
        return {k: dict(v) for k, v in self.layer_options}

    @property
    def val_windows(self) -> int:
        return self.train.eval_batches * self.train.batch_size

    def to_dict(self) -> JSONObject:
        """The flat form stored with every evaluation (``tasks_json["recipe"]``)."""
        t = self.train
        return {"scale": self.scale, "steps": t.steps, "batch_size": t.batch_size, "seq_len": t.seq_len, "lr": t.lr,
                "val_windows": self.val_windows, "corpus": self.corpus, "lrs": list(self.lrs),
                "lr_extend": self.lr_extend, "dev_fraction": self.dev_fraction, "pack_lrs": self.pack_lrs,
                **({"layer_options": self.layer_option_map} if self.layer_options else {})}


def _text_short():
    """``text`` at a third of its training (100 updates) and half its validation windows (128)."""
    return TextProtocol(train=dataclasses.replace(_text_train(), steps=100, eval_batches=8))


def _text_noconv():
    """``text`` with the short causal convolution of every Mamba-2 and Gated DeltaNet layer cut to one tap."""
    return TextProtocol(layer_options=(("S", (("d_conv", 1),)), ("G", (("d_conv", 1),))))


def _text_long():
    """``text`` on windows of 1,024 bytes, 2 per update: the same bytes per update and validation bytes."""
    return TextProtocol(train=dataclasses.replace(_text_train(), batch_size=2, seq_len=1024))


TEXT_PROTOCOLS = {"text": TextProtocol, "text-lr": lambda: TextProtocol(lrs=(1e-3, 3e-3, 1e-2)),
                  "text-short": _text_short, "text-noconv": _text_noconv, "text-long": _text_long}
"""Registered ``text`` recipes by protocol name (built on use: a recipe holds a ``TrainConfig``, which
imports JAX); ``text-lr``'s grid brackets the default 3e-3 by 3x. ``text-short`` was the candidate of
the default-proxy selection that fitted the selection rule's cost line (``search.published.selection``)
while ``text``, which agrees best with the judges, did not fit the hour; with the CPU attention in query
blocks of 64 ``make search`` under ``text`` takes 54 minutes and the rule chooses it. Both definitions
were fixed here before they were judged. ``text-noconv`` (a candidate of 2026-12-07, fixed before it was
judged) asks whether ``text`` rewards Mamba-2 and Gated DeltaNet layers for their 4-tap short
convolution, a large help to a small byte-level model and a small one at scale: the proxy model keeps
one tap (a per-channel scale, no mixing over time), so those layers mix the sequence only through their
recurrence, as attention and GLA mix it only through theirs. ``text-long`` (a candidate of 2026-12-07,
fixed before it was judged) asks whether ``text``'s 128-byte windows, about 30 words, hide what
attention does at the published models' 2K-8K tokens: retrieving what was said far back, which a
fixed state cannot. Neither is a default (docs/published.md)."""


def score_from_bpb(bpb: float) -> float:
    """``1 - bpb / 8``: 1 is a perfect predictor, 0 the uniform guess over bytes."""
    return 1.0 - bpb / 8.0


class TextEvaluator:
    """Real-text proxy behind ``search.evaluators.Evaluator`` (imports JAX)."""

    cpu_bound = True
    """Trains JAX models that leave 2 CPU cores partly idle: ``--workers 0`` runs two on a CPU host."""

    def __init__(self, config: EvaluatorConfig, protocol: TextProtocol | None = None):
        from composer.data import CorpusSource
        from composer.jax_cache import enable_compilation_cache

        self.config = config
        self.protocol = config.label
        protocol = protocol or TEXT_PROTOCOLS.get(config.protocol, TextProtocol)()
        scale = config.steps_scale or 1.0
        if scale <= 0:
            raise ValueError(f"steps_scale: must be > 0, got {scale}")
        steps = max(1, round(protocol.train.steps * scale))
        self.recipe = dataclasses.replace(protocol, train=protocol.train.replace(steps=steps))
        dev = self.recipe.dev_fraction if self.recipe.lrs else 0.0
        self.source = CorpusSource(self.recipe.corpus, dev_fraction=dev)
        # A layout's packed step compiles in about 2.5 s of a 7-25 s evaluation; the other worker, a
        # resumed search and the next search load it from disk instead (experiments/bench/search_packing.py).
        self.cache_dir = enable_compilation_cache()

    def spec(self, pattern: str) -> Any:
        from composer.presets import spec_from_pattern

        spec = spec_from_pattern(pattern, self.recipe.scale, layer_options=self.recipe.layer_option_map)
        # windows longer than the scale's (``text-long``) need a model built for them; no parameter changes
        return spec.replace(max_seq_len=max(spec.max_seq_len, self.recipe.train.seq_len))

    def __call__(self, pattern: str, seed: int | None = None) -> Evaluation:
        from composer.train import train

        r = self.recipe
        seed = self.config.seed if seed is None else seed
        spec = self.spec(pattern)
        config = r.train.replace(seed=seed)
        t0 = time.perf_counter()
        grid = None
        if r.lrs:
            import tempfile

            from composer.lr_grid import train_grid

            with tempfile.TemporaryDirectory(prefix="composer-text-lr-") as tmp:  # one run per rate, then gone
                grid = train_grid(spec, self.source, config.replace(out_dir=tmp, checkpoint_every=0), r.lrs,
                                  extend=r.lr_extend, pack=len(r.lrs) if r.pack_lrs else 1)
            result, val_loss, val_se = grid.result, grid.val_loss, grid.val_loss_se
        else:
            result = train(spec, self.source, config)
            val_loss, val_se = result.eval_loss, result.eval_loss_se
        return self._evaluation(pattern, spec, seed, config, result, val_loss, val_se, grid,
                                time.perf_counter() - t0)

    @property
    def can_pack(self) -> bool:
        """Seeds pack at one rate (``composer.packed_train``); a per-layout grid (``text-lr``) runs alone."""
        return not self.recipe.lrs

    def evaluate_many(self, pattern: str, seeds: list[int | None]) -> list[Evaluation | Exception]:
        """``pattern`` at every seed in one packed program; per seed its ``Evaluation`` or its divergence."""
        from composer.packed_train import train_packed

        if not self.can_pack:
            return [self(pattern, s) for s in seeds]
        spec, t0 = self.spec(pattern), time.perf_counter()
        resolved = [self.config.seed if s is None else s for s in seeds]
        config = self.recipe.train
        out = train_packed(spec, self.source, config, [(s, config.lr) for s in resolved])
        share = (time.perf_counter() - t0) / len(resolved)
        return [r if isinstance(r, Exception) else
                self._evaluation(pattern, spec, s, config.replace(seed=s), r, r.eval_loss, r.eval_loss_se, None,
                                 share, pack=len(resolved)) for s, r in zip(resolved, out)]

    def _evaluation(self, pattern, spec, seed, config, result, val_loss, val_se, grid, wall_s,
                    pack: int = 1) -> Evaluation:
        import jax

        from composer.spec import arch_id

        bpb = val_loss / math.log(2)
        device = jax.devices()[0]
        extra = {} if grid is None else {"lr": grid.lr, "lr_at_edge": grid.at_edge,
                                         "dev_loss": {f"{k:g}": v for k, v in sorted(grid.dev.items())}}
        if pack > 1:
            extra["pack"] = pack
        return Evaluation(score=score_from_bpb(bpb), protocol=self.protocol, tasks={"text_bpb": bpb},
                          seed=seed, pattern=pattern, arch_id=arch_id(spec), steps=config.steps,
                          tokens=config.steps * config.tokens_per_step, wall_s=wall_s,
                          compile_s=result.compile_seconds, device=f"{device.platform}:{device.device_kind}",
                          details={"text_bpb": bpb, "val_loss_se": val_se, "train_loss": result.final_train_loss,
                                   "recipe": self.recipe.to_dict(), **extra})
