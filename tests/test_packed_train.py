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
