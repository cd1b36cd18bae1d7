"""Summarising one MAD training run from its evaluation curves (docs/mad_tasks.md §1.5 and §11)."""

from __future__ import annotations

import numpy as np

__all__ = ["summarise"]


def summarise(protocol, task: str, plan, curves: dict[str, np.ndarray], lr: float, wd: float) -> dict:
    """One training run's score as the protocol selects it (final accuracy, area under the curve, or
    accuracy at the lowest test loss; cut at the early-stop threshold), its curve, and the step by
    which its loss became NaN/inf (``diverged_by_step``, ``None`` when finite). A run that stopped early
    (``evals_done`` in ``curves``) is summarised over the evaluations it ran; ``steps_trained`` counts
    the updates it made."""
    done = int(curves.get("evals_done", len(curves["acc"])))
    acc, test_loss, train_loss = (np.asarray(curves[k])[:done] for k in ("acc", "test_loss", "train_loss"))
    bad = np.nonzero(~(np.isfinite(train_loss) & np.isfinite(test_loss)))[0]
    # The training loss is seen once per evaluation interval: the step is the end of the first bad one.
    diverged = int((bad[0] + 1) * plan.eval_interval) if bad.size else None
    last = len(acc)
    if protocol.early_stop is not None:
        hit = np.nonzero(acc >= protocol.early_stop)[0]
        last = int(hit[0]) + 1 if hit.size else last
    selection = protocol.selection_for(task)
    if selection == "auc":
        chosen = float(np.mean(acc[:last]))
    elif selection == "min_test_loss":
        chosen = float(acc[int(np.nanargmin(test_loss[:last]))])
    else:
        chosen = float(acc[last - 1])
    return {"acc": chosen, "selection": selection, "acc_final": float(acc[-1]), "auc": float(np.mean(acc)),
            "lr": lr, "wd": wd, "curve_steps": [(i + 1) * plan.eval_interval for i in range(len(acc))],
            "curve_acc": [round(float(a), 5) for a in acc],
            "train_loss": float(train_loss[-1]), "test_loss": float(test_loss[-1]),
            "diverged_by_step": diverged, "steps_trained": done * plan.eval_interval,
            "stopped_early": done < len(curves["acc"])}
