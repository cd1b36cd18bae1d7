"""Packed training (``composer.packed_train``): every (seed, learning rate) member equals the same
run trained alone by ``composer.train.train``, and a diverging member does not take the others down."""

import numpy as np
import pytest

from composer.data import TextSource
from composer.errors import DivergenceError, UsageError
from composer.packed_train import train_packed
from composer.presets import spec_from_pattern
from composer.train import TrainConfig, train
from tests.test_train import _text

SPEC = spec_from_pattern("AM", "proxy")
CFG = TrainConfig(steps=10, batch_size=4, seq_len=32, lr=3e-3, warmup_frac=0.2, decay_frac=0.3, eval_every=0,
                  eval_batches=2, checkpoint_every=0, log_every=5)


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "corpus.txt"
    path.write_text(_text(400))
    return TextSource(path)


def test_every_member_equals_its_solo_run(source):
    members = [(0, 3e-3), (1, 3e-3), (0, 1e-2), (2, 1e-3)]
    packed = train_packed(SPEC, source, CFG, members)
    for (seed, lr), got in zip(members, packed):
        solo = train(SPEC, source, CFG.replace(seed=seed, lr=lr))
        np.testing.assert_allclose(got.train_losses, solo.train_losses, rtol=2e-5, atol=2e-5)
        assert got.eval_loss == pytest.approx(solo.eval_loss, rel=2e-5)
        assert got.eval_loss_se == pytest.approx(solo.eval_loss_se, rel=1e-3)
    assert packed[0].eval_loss != packed[1].eval_loss  # the seeds really differ


def test_a_diverging_member_is_its_own_error(source):
    out = train_packed(SPEC, source, CFG, [(0, 3e-3), (0, 1e30)])
    assert isinstance(out[1], DivergenceError) and "diverged at step" in str(out[1])
    assert out[0].eval_loss == pytest.approx(train(SPEC, source, CFG).eval_loss, rel=2e-5)


@pytest.mark.parametrize("members", [[], [(0, 1e-3), (0, 1e-3)], [(0, 0.0)]])
def test_bad_members_are_refused(source, members):
    with pytest.raises(UsageError, match="members"):
        train_packed(SPEC, source, CFG, members)


def test_members_leave_the_run_folders_their_solo_runs_would(tmp_path):
    """With ``out_dirs`` a member's folder scores on another split (``evaluate_run``), reads as finished
    to a resumed ``train`` and holds every step's metrics, as the folder of its solo run does."""
    from composer.checkpoint import MetricsLog
    from composer.train import evaluate_run

    (tmp_path / "corpus.txt").write_text(_text(400))
    source = TextSource(tmp_path / "corpus.txt", dev_fraction=0.1)
    members = [(0, 3e-3), (0, 1e-2), (0, 1e30)]
    dirs = [str(tmp_path / f"m{k}") for k in range(3)]
    packed = train_packed(SPEC, source, CFG.replace(eval_split="dev"), members, out_dirs=dirs)
    assert isinstance(packed[2], DivergenceError)
    assert not [p for p in (tmp_path / "m2" / "checkpoints").iterdir() if p.name.isdigit()]  # no checkpoint
    for (seed, lr), d, got in zip(members[:2], dirs, packed):
        solo_cfg = CFG.replace(seed=seed, lr=lr, out_dir=str(tmp_path / f"solo-{lr:g}"), checkpoint_every=10)
        solo = train(SPEC, source, solo_cfg.replace(eval_split="dev"))
        assert got.out_dir == str(tmp_path / d) and got.eval_loss == pytest.approx(solo.eval_loss, rel=2e-5)
        val = evaluate_run(SPEC, source, CFG.replace(seed=seed, lr=lr, out_dir=d), "validation")
        assert val == pytest.approx(evaluate_run(SPEC, source, solo_cfg, "validation"), rel=2e-5)
        again = train(SPEC, source, CFG.replace(seed=seed, lr=lr, out_dir=d, eval_split="dev"), resume=True)
        assert again.start_step == CFG.steps and again.eval_loss == pytest.approx(got.eval_loss)
        mine, theirs = (MetricsLog.read(f"{x}/metrics.jsonl") for x in (d, solo_cfg.out_dir))
        assert [(r["step"], r["split"]) for r in mine] == [(r["step"], r["split"]) for r in theirs]
        assert [r["lr"] for r in mine if "lr" in r] == pytest.approx([r["lr"] for r in theirs if "lr" in r])
    with pytest.raises(UsageError, match="already holds a run"):
        train_packed(SPEC, source, CFG, members[:1], out_dirs=dirs[:1])
