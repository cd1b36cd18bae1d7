"""In-context recall, multi-query (MAD §2, "CR").

A sequence is ``T/2 - 1`` key-value context pairs then one probe pair; the keys come from
``[0, V//2)`` and the values from ``[V//2, V)``, through a key->value table drawn afresh for each
sequence. The model sees ``tokens[:-1]`` (length ``T - 1``).

Targets (docs/mad_tasks.md §1.1):
    training: the full next-token shift ``tokens[1:]`` (every position scored);
    test: the value at each key that occurred in an earlier pair, and the probe value.

MAD's single-query variant (a copy-prefix token before the probe) is never used by the benchmark
and is not implemented.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from composer.mad.tasks._common import Seed, TaskBatch, check_bool, check_common, check_request, fail, make_batch
from composer.mad.tasks._recall import sample_recall
from composer.mad.tasks.registry import register_task

NAME = "in_context_recall"


@dataclasses.dataclass(frozen=True, kw_only=True)
class InContextRecallConfig:
    """One in-context recall setting; defaults are the MAD baseline (V16 T128 N12800)."""

    vocab_size: int = 16
    """Keys ``[0, V//2)`` and values ``[V//2, V)``; also the model vocabulary. More keys means
    fewer re-queried keys (fewer scored positions) and a larger table to hold in context."""
    seq_len: int = 128
    """Sequence length ``T`` in tokens, even; the model input has ``T - 1`` tokens."""
    num_train_examples: int = 12800
    """Size of the training split (``generate_split``)."""
    num_test_examples: int = 1280
    """Size of the test split (``generate_split``)."""
    train_on_scored_only: bool = False
    """Use test-form targets for training too (the cpu protocol's deliberate deviation from MAD,
    docs/mad_tasks.md §11.3); sampling is unchanged."""

    def __post_init__(self):
        check_common(self, min_vocab=2, min_seq_len=4)
        if self.seq_len % 2:
            fail(self, "seq_len", "must be even (the sequence is key-value pairs)")
        check_bool(self, "train_on_scored_only")

    @property
    def input_length(self) -> int:
        return self.seq_len - 1


@register_task(NAME, InContextRecallConfig)
def generate(config: InContextRecallConfig, n: int, seed: Seed, *, training: bool) -> TaskBatch:
    """Generates ``n`` instances, ``[n, T - 1]``, deterministically from ``seed``."""
    check_request(n, seed)
    tokens, test_targets = sample_recall(
        np.random.default_rng(seed), n, vocab_size=config.vocab_size, seq_len=config.seq_len,
        noise_vocab_size=0, frac_noise=0.0)
    full = training and not config.train_on_scored_only
    return make_batch(tokens[:, :-1], tokens[:, 1:] if full else test_targets, NAME, training)
