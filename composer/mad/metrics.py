"""Loss and accuracy over scored positions (docs/mad_tasks.md §1.4); positions with ``IGNORE`` drop out."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from composer.mad.tasks import IGNORE

__all__ = ["cross_entropy", "micro_counts", "macro_accuracy", "micro_accuracy_np", "macro_accuracy_np"]


def cross_entropy(logits: jax.Array, targets: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Summed token cross-entropy over scored positions and their count (``ignore_index`` semantics)."""
    scored = targets != IGNORE
    safe = jnp.where(scored, targets, 0)
    logp = jax.nn.log_softmax(logits.astype(jnp.float32), axis=-1)
    nll = -jnp.take_along_axis(logp, safe[..., None], axis=-1)[..., 0]
    return jnp.sum(jnp.where(scored, nll, 0.0)), jnp.sum(scored)


def micro_counts(logits: jax.Array, targets: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Correct argmax predictions and scored positions (micro accuracy = ratio)."""
    scored = targets != IGNORE
    correct = (jnp.argmax(logits, axis=-1) == targets) & scored
    return jnp.sum(correct), jnp.sum(scored)


def macro_accuracy(logits: jax.Array, targets: jax.Array) -> jax.Array:
    """torchmetrics ``MulticlassAccuracy(average='macro', ignore_index=-100)`` on one batch.

    Mean over classes with ``TP + FP + FN > 0`` of ``TP / (TP + FN)`` (0 for a class that is predicted
    but never a target). NaN when the batch has no scored position.
    """
    vocab = logits.shape[-1]
    scored = (targets != IGNORE).ravel()
    pred = jnp.argmax(logits, axis=-1).ravel()
    tgt = jnp.where(scored, targets.ravel(), 0)
    hit = scored & (pred == tgt)
    tp = jnp.zeros(vocab).at[tgt].add(hit)
    n_target = jnp.zeros(vocab).at[tgt].add(scored)
    n_pred = jnp.zeros(vocab).at[pred].add(scored)
    present = (n_target + n_pred) > 0
    recall = jnp.where(n_target > 0, tp / jnp.maximum(n_target, 1), 0.0)
    return jnp.sum(jnp.where(present, recall, 0.0)) / jnp.sum(present)


def micro_accuracy_np(pred: np.ndarray, targets: np.ndarray) -> float:
    """Reference micro accuracy from argmax predictions ``pred`` (same shape as ``targets``)."""
    scored = targets != IGNORE
    return float((pred[scored] == targets[scored]).mean())


def macro_accuracy_np(pred: np.ndarray, targets: np.ndarray) -> float:
    """Reference macro accuracy (see ``macro_accuracy``), written as the per-class loop."""
    scored = targets != IGNORE
    p, t = pred[scored], targets[scored]
    recalls = [np.mean(p[t == c] == c) if np.any(t == c) else 0.0 for c in np.union1d(p, t)]
    return float(np.mean(recalls))
