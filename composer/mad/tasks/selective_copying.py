"""Selective copying (MAD §5, "SC").

``n = num_tokens_to_copy`` content tokens ``c_1..c_n`` (from ``[0, V-2)``, with replacement) are
scattered among ``B = T - 2n - 1`` blanks (``V - 2``); then the copy token (``V - 1``) and ``n``
blanks follow. The model must emit ``c_j`` at the ``j``-th blank after the copy token. Targets
(train = test, no shift): ``IGNORE`` on the first ``T - n`` positions, ``c_1..c_n`` on the last ``n``.

Each blank independently joins one of the ``n`` gaps *before* some ``c_j`` (a multinomial), so no
blank ever follows ``c_n``: it always sits right before the copy token, as in MAD.

Deviations from MAD (fixes, docs/mad_tasks.md §9): ``num_tokens_to_copy`` is a real knob (MAD's configs
did not pass it to the generator before PR #8, so its 32/64/96 settings produced n=16 data), ``n=0``
is rejected (it scores nothing), and one seeded Generator draws everything (MAD placed the blanks
with NumPy's global RNG).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from composer.mad.tasks._task_base import IGNORE, TaskConfig, check_int, fail
from composer.mad.tasks.registry import register_task


@dataclasses.dataclass(frozen=True, kw_only=True)
class SelectiveCopyingConfig(TaskConfig):
    """One selective copying setting; defaults are the MAD baseline (V16 T256 n16 N12800).

    ``vocab_size``: content tokens ``[0, V-2)``, blank ``V-2``, copy ``V-1``. ``seq_len``: the sequence
    (and model input) length ``T``; must exceed ``2 * num_tokens_to_copy + 1``.
    """

    seq_len: int = 256
    num_tokens_to_copy: int = 16
    """Number ``n`` of content tokens to copy = scored positions per sequence."""

    MIN_VOCAB = 3
    MIN_SEQ_LEN = 4

    def check(self) -> None:
        check_int(self, "num_tokens_to_copy", 1)
        if self.seq_len <= 2 * self.num_tokens_to_copy + 1:
            fail(self, "seq_len", f"must be > 2 * num_tokens_to_copy + 1 = "
                 f"{2 * self.num_tokens_to_copy + 1}")

    @property
    def num_blanks(self) -> int:
        """Blanks among the content tokens, ``T - 2n - 1``."""
        return self.seq_len - 2 * self.num_tokens_to_copy - 1


@register_task("selective_copying", SelectiveCopyingConfig)
def sample(config: SelectiveCopyingConfig, rng: np.random.Generator, n: int,
           training: bool) -> tuple[np.ndarray, np.ndarray]:
    """``n`` instances, ``[n, T]``; ``training`` does not change the data (MAD §1.1)."""
    V, T, k = config.vocab_size, config.seq_len, config.num_tokens_to_copy
    content = rng.integers(0, V - 2, (n, k))
    gaps = rng.multinomial(config.num_blanks, np.full(k, 1.0 / k), size=n)
    pos = np.cumsum(gaps, axis=1) + np.arange(k)
    inputs = np.full((n, T), V - 2, dtype=np.int64)
    np.put_along_axis(inputs, pos, content, axis=1)
    inputs[:, T - k - 1] = V - 1
    targets = np.full((n, T), IGNORE, dtype=np.int64)
    targets[:, T - k:] = content
    return inputs, targets
