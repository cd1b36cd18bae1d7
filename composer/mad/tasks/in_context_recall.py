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

from composer.mad.tasks._recall import PairRecallConfig, sample_pairs
from composer.mad.tasks.registry import register_task


@dataclasses.dataclass(frozen=True, kw_only=True)
class InContextRecallConfig(PairRecallConfig):
    """One in-context recall setting; defaults are the MAD baseline (V16 T128 N12800).

    ``vocab_size``: keys ``[0, V//2)`` and values ``[V//2, V)``. More keys means fewer re-queried
    keys (fewer scored positions) and a larger table to hold in context. ``seq_len``: ``T``, even.
    """


@register_task("in_context_recall", InContextRecallConfig)
def sample(config: InContextRecallConfig, rng: np.random.Generator, n: int,
           training: bool) -> tuple[np.ndarray, np.ndarray]:
    """``n`` instances, ``[n, T - 1]``."""
    return sample_pairs(config, rng, n, training)
