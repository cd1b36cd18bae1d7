"""Fuzzy in-context recall (MAD §4, "FR").

Keys and values are *motifs*: ordered tuples of 1..``k_motif`` distinct key tokens and
1..``v_motif`` distinct value tokens. A key is identified only by its whole run, and different keys
share prefixes and suffixes. Vocabulary: keys ``[0, nsv//2)``, values ``[nsv//2, nsv)``, pad
``V - 1``, with ``nsv = V - 1``.

Per sequence: draw the probe ``k* v*`` (``q = |k*| + |v*|`` tokens) and an insertion point
``a ~ U{0 .. T-2q-1}``; while the sequence is shorter than ``T - q - (k_motif + v_motif)``, append
the probe (unscored) once the length reaches ``a``, else a pair ``k v`` (``v`` reused if ``k`` was
drawn before, ``v*`` if ``k == k*``). Then append the final query ``k* v*`` and left-pad to
``T + 1``. The model sees the first ``T`` tokens.

Targets (docs/mad_tasks.md §1.1): training, the full next-token shift; test, the value tokens of pairs
whose key occurred earlier in the sequence and the final ``v*``. Test sequences always use key motifs
of size ``k_motif``; training ones draw the key size uniformly per pair.

The generation loop runs over *pairs* (each step appends one pair to every unfinished sequence),
vectorised over instances; motifs are drawn directly as ``s`` distinct tokens (same distribution as
MAD's shuffled permutation lists, docs/mad_tasks.md §4, without their ``V^3`` cost).

Deviation from MAD (a fix, documented here; not in docs/mad_tasks.md §9): MAD inserts the probe only at
a loop step whose start is ``>= a``, and ``a`` can lie past the last step, so some sequences end
with a query whose key never occurred: unanswerable (measured: 2.5 % of test sequences at the
baseline, 3 % at the cpu-v1 setting). With ``guarantee_probe=True`` (default) ``a`` is clamped
to ``T - q - 2(k_motif + v_motif)``, which every sequence's last step reaches;
``guarantee_probe=False`` keeps MAD's behaviour.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from composer.mad.tasks._recall import RecallConfig
from composer.mad.tasks._task_base import IGNORE, check_bool, check_int, distinct_tokens, fail
from composer.mad.tasks.registry import register_task


@dataclasses.dataclass(frozen=True, kw_only=True)
class FuzzyInContextRecallConfig(RecallConfig):
    """One fuzzy recall setting; defaults are the MAD baseline (V16 T128 N12800 k3 v3).

    ``vocab_size``: keys ``[0, (V-1)//2)``, values ``[(V-1)//2, V-1)``, pad ``V-1``. ``seq_len``: the
    model input length ``T`` (sequences are left-padded to ``T + 1`` before the shift). With
    ``train_on_scored_only`` the training sampling (variable key sizes) is unchanged too.
    """

    k_motif: int = 3
    """Maximum key motif size; test keys always have exactly this size."""
    v_motif: int = 3
    """Maximum value motif size (value sizes are uniform in ``1..v_motif``)."""
    guarantee_probe: bool = True
    """Ensure the probe pair occurs before the final query (see the module docstring)."""

    MIN_VOCAB = 3

    def __post_init__(self):
        super().__post_init__()
        # Last, after RecallConfig's train_on_scored_only: with both invalid, the error names the same field as ever.
        check_bool(self, "guarantee_probe")

    def check(self) -> None:
        check_int(self, "k_motif", 1)
        check_int(self, "v_motif", 1)
        keys = (self.vocab_size - 1) // 2
        if keys < self.k_motif or self.vocab_size - 1 - keys < self.v_motif:
            fail(self, "vocab_size", f"needs >= k_motif={self.k_motif} key tokens and >= "
                 f"v_motif={self.v_motif} value tokens ((V-1)//2 keys, the rest values)")
        if (keys + 1) ** self.k_motif >= 2 ** 62:
            fail(self, "k_motif", "too large to encode key motifs in int64 at this vocab_size")
        if self.seq_len <= 2 * (self.k_motif + self.v_motif):
            fail(self, "seq_len", f"must be > 2 * (k_motif + v_motif) = "
                 f"{2 * (self.k_motif + self.v_motif)}")

    @property
    def num_key_tokens(self) -> int:
        return (self.vocab_size - 1) // 2


@register_task("fuzzy_in_context_recall", FuzzyInContextRecallConfig)
def sample(config: FuzzyInContextRecallConfig, rng: np.random.Generator, n: int,
           training: bool) -> tuple[np.ndarray, np.ndarray]:
    """``n`` instances, ``[n, T]``."""
    seq, lab = _sequences(config, rng, n, training)
    return seq[:, :-1], config.targets(seq[:, 1:], lab[:, 1:], training)


@dataclasses.dataclass
class _Motifs:
    """A batch of key and value motifs: padded tokens ``[n, k_motif]``/``[n, v_motif]``, lengths."""

    key: np.ndarray
    klen: np.ndarray
    val: np.ndarray
    vlen: np.ndarray


def _draw(config: FuzzyInContextRecallConfig, rng: np.random.Generator, n: int,
          training: bool) -> _Motifs:
    km, vm, nk = config.k_motif, config.v_motif, config.num_key_tokens
    klen = rng.integers(1, km + 1, n) if training else np.full(n, km)
    vlen = rng.integers(1, vm + 1, n)
    key = distinct_tokens(rng, n, nk, km)
    val = distinct_tokens(rng, n, config.vocab_size - 1 - nk, vm) + nk
    return _Motifs(key, klen, val, vlen)


def _code(key: np.ndarray, klen: np.ndarray, base: int) -> np.ndarray:
    """Injective int64 code of each key motif (its tokens + 1 as base-``base`` digits)."""
    digits = np.where(np.arange(key.shape[1]) < klen[:, None], key + 1, 0).astype(np.int64)
    return (digits * base ** np.arange(key.shape[1], dtype=np.int64)).sum(axis=1)


def _sequences(config: FuzzyInContextRecallConfig, rng: np.random.Generator, n: int,
               training: bool) -> tuple[np.ndarray, np.ndarray]:
    """Returns padded sequences and their test-form labels, both ``[n, T + 1]``."""
    T, km, vm = config.seq_len, config.k_motif, config.v_motif
    base = config.num_key_tokens + 1
    probe = _draw(config, rng, n, training)
    pcode = _code(probe.key, probe.klen, base)
    q = probe.klen + probe.vlen
    bound = T - q - (km + vm)
    start = rng.integers(0, T - 2 * q)
    if config.guarantee_probe:
        start = np.minimum(start, np.maximum(bound - (km + vm), 0))

    buf = np.full((n, T + 1 + km + vm), config.vocab_size - 1, dtype=np.int64)
    lab = np.full(buf.shape, IGNORE, dtype=np.int64)
    length = np.zeros(n, dtype=np.int64)
    placed = np.zeros(n, dtype=bool)
    history = _History(n, T // 2 + 1, vm)
    for step in range(T // 2 + 1):  # every step appends >= 2 tokens, so this bound is enough
        active = length < bound
        if not active.any():
            break
        pair = _draw(config, rng, n, training)
        code = _code(pair.key, pair.klen, base)
        seen, old_val, old_vlen = history.lookup(code, step)
        is_probe = code == pcode
        reuse = seen & ~is_probe
        pair.val = np.where(is_probe[:, None], probe.val,
                            np.where(reuse[:, None], old_val, pair.val))
        pair.vlen = np.where(is_probe, probe.vlen, np.where(reuse, old_vlen, pair.vlen))
        insert = active & ~placed & (length >= start)
        pair, code = _select(insert, probe, pair), np.where(insert, pcode, code)
        _write(buf, lab, length, pair, active, seen & ~insert)
        placed |= active & (insert | is_probe)
        history.record(step, np.where(active, code, -1), pair)
        length += np.where(active, pair.klen + pair.vlen, 0)
    _write(buf, lab, length, probe, np.ones(n, dtype=bool), np.ones(n, dtype=bool))
    return _left_pad(buf, lab, length + q, T + 1, config.vocab_size - 1)


class _History:
    """The pairs appended so far, per instance: key codes (-1 = none) and their value motifs."""

    def __init__(self, n: int, steps: int, v_motif: int):
        self.code = np.full((n, steps), -1, dtype=np.int64)
        self.val = np.zeros((n, steps, v_motif), dtype=np.int64)
        self.vlen = np.zeros((n, steps), dtype=np.int64)

    def lookup(self, code: np.ndarray, step: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Whether each key occurred before ``step``, and its value motif if so."""
        match = self.code[:, :step] == code[:, None]
        first = np.argmax(match, axis=1) if step else np.zeros(len(code), dtype=np.int64)
        rows = np.arange(len(code))
        return match.any(axis=1), self.val[rows, first], self.vlen[rows, first]

    def record(self, step: int, code: np.ndarray, pair: _Motifs) -> None:
        self.code[:, step], self.val[:, step], self.vlen[:, step] = code, pair.val, pair.vlen


def _select(cond: np.ndarray, a: _Motifs, b: _Motifs) -> _Motifs:
    """Row-wise ``a if cond else b``."""
    c = cond[:, None]
    return _Motifs(np.where(c, a.key, b.key), np.where(cond, a.klen, b.klen),
                   np.where(c, a.val, b.val), np.where(cond, a.vlen, b.vlen))


def _write(buf: np.ndarray, lab: np.ndarray, length: np.ndarray, pair: _Motifs,
           active: np.ndarray, scored: np.ndarray) -> None:
    """Appends ``key value`` at ``length`` in the active rows; value labels only where scored."""
    km, vm = pair.key.shape[1], pair.val.shape[1]
    i = np.arange(km + vm)
    in_key = i < pair.klen[:, None]
    tok = np.where(in_key, np.take_along_axis(pair.key, np.minimum(i, km - 1)[None].repeat(
        len(length), 0), axis=1), np.take_along_axis(pair.val, np.clip(
            i - pair.klen[:, None], 0, vm - 1), axis=1))
    valid = active[:, None] & (i < (pair.klen + pair.vlen)[:, None])
    r, c = np.nonzero(valid)
    pos = length[r] + c
    buf[r, pos] = tok[r, c]
    lab[r, pos] = np.where(in_key[r, c] | ~scored[r], IGNORE, tok[r, c])


def _left_pad(buf: np.ndarray, lab: np.ndarray, length: np.ndarray, width: int,
              pad: int) -> tuple[np.ndarray, np.ndarray]:
    """Right-aligns each row's first ``length`` entries in ``width`` columns (pad / IGNORE)."""
    src = np.arange(width)[None, :] - (width - length)[:, None]
    keep = src >= 0
    src = np.maximum(src, 0)
    return (np.where(keep, np.take_along_axis(buf, src, axis=1), pad),
            np.where(keep, np.take_along_axis(lab, src, axis=1), IGNORE))
