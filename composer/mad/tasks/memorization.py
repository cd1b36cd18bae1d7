"""Memorization (MAD §7, "M").

One fixed fact table maps key tokens ``[0, nsv//2)`` injectively to value tokens
``[nsv//2, nsv)`` (``nsv = V - 1``); it depends only on ``table_seed``, never on the sample seed,
so the train and test splits share it. A sequence is ``T/2`` pairs ``(k_i, ins)`` with ``k_i``
uniform over the keys and ``ins = V - 1``; the target at each ``ins`` is ``table[k_i]``, keys are
``IGNORE`` (train = test, no shift). Values never appear in the input: the model must look back
one token and recall a memorised fact.
"""

from __future__ import annotations

import dataclasses
import functools

import numpy as np

from composer.mad.tasks._task_base import IGNORE, TaskConfig, check_int, fail
from composer.mad.tasks.registry import register_task


@dataclasses.dataclass(frozen=True, kw_only=True)
class MemorizationConfig(TaskConfig):
    """One memorization setting; defaults are the MAD baseline (V256 T32 N256).

    ``vocab_size``: keys ``[0, (V-1)//2)``, values ``[(V-1)//2, V-1)``, insert token ``V-1``; the
    number of facts to memorise is ``(V-1)//2``. ``seq_len``: ``T``, even (``T/2`` key-insert pairs,
    each scored once). ``num_train_examples``: with MAD's fixed epochs, how often each fact is seen.
    """

    vocab_size: int = 256
    seq_len: int = 32
    num_train_examples: int = 256
    table_seed: int = 12345
    """Seed of the fact table (MAD: ``MADConfig.seed``), independent of the sample seed."""

    MIN_VOCAB = 3
    MIN_SEQ_LEN = 2

    def check(self) -> None:
        if self.seq_len % 2:
            fail(self, "seq_len", "must be even (the sequence is key-insert pairs)")
        check_int(self, "table_seed", 0)

    @property
    def num_facts(self) -> int:
        return (self.vocab_size - 1) // 2


@functools.lru_cache(maxsize=16)
def _table(vocab_size: int, table_seed: int) -> np.ndarray:
    nsv = vocab_size - 1
    rng = np.random.default_rng(table_seed)
    # Shuffle the keys, then the values, with one Generator and zip them (truncated to the
    # shorter, the keys): the same draws as MAD's generate_kv_map, hence the same table.
    keys, values = np.arange(nsv // 2), np.arange(nsv // 2, nsv)
    rng.shuffle(keys)
    rng.shuffle(values)
    table = np.empty(nsv // 2, dtype=np.int64)
    table[keys] = values[:len(keys)]
    table.flags.writeable = False
    return table


def fact_table(config: MemorizationConfig) -> np.ndarray:
    """The fixed key->value map as an array: ``fact_table(cfg)[k]`` is the value of key ``k``."""
    return _table(config.vocab_size, config.table_seed)


@register_task("memorization", MemorizationConfig)
def sample(config: MemorizationConfig, rng: np.random.Generator, n: int,
           training: bool) -> tuple[np.ndarray, np.ndarray]:
    """``n`` instances, ``[n, T]``; ``training`` does not change the data (MAD §1.1)."""
    keys = rng.integers(0, config.num_facts, (n, config.seq_len // 2))
    inputs = np.stack([keys, np.full_like(keys, config.vocab_size - 1)], axis=2).reshape(n, -1)
    targets = np.stack([np.full_like(keys, IGNORE), fact_table(config)[keys]], axis=2)
    return inputs, targets.reshape(n, -1)
