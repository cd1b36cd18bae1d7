"""The arrays one MAD task trains and is scored on, as a compiled run takes them (numpy, host side)."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from composer.mad.protocol import Protocol
from composer.mad.tasks import IGNORE, generate, generate_split

__all__ = ["task_arrays", "epoch_indices"]


def task_arrays(protocol: Protocol, task: str, config: Any, seed: int, split: str, n_test: int) -> tuple:
    """``(train_x, train_y, batch_idx, eval_x, eval_y)``: the training rows and a ``[steps, batch]`` index
    into them, and ``n_test`` evaluation rows of ``split`` padded to whole evaluation batches."""
    from composer.mad.training import pad_rows

    steps, batch = protocol.train_steps(task, config), protocol.batch_size
    if protocol.data == "stream":
        train = generate(config, steps * batch, np.random.SeedSequence(seed).spawn(2)[0], training=True)
        idx = np.arange(steps * batch, dtype=np.int32).reshape(steps, batch)
    else:
        train = generate_split(config, "train", seed)
        idx = epoch_indices(len(train), batch, protocol.epochs, np.random.default_rng(seed))
    test = generate_split(dataclasses.replace(config, num_test_examples=n_test), split, seed)
    eb = min(protocol.eval_batch, n_test)
    return (train.inputs, train.targets, idx, pad_rows(test.inputs, eb, 0), pad_rows(test.targets, eb, IGNORE))


def epoch_indices(n: int, batch: int, epochs: int, rng: np.random.Generator) -> np.ndarray:
    """``[epochs * ceil(n / batch), batch]``: a fresh permutation per epoch; a short last batch is
    filled by wrapping to the start of the same permutation."""
    per_epoch = -(-n // batch)
    rows = [rng.permutation(n)[np.arange(per_epoch * batch) % n] for _ in range(epochs)]
    return np.concatenate(rows).astype(np.int32).reshape(epochs * per_epoch, batch)
