"""Training loop, schedule, checkpoints, data and the ``composer train`` CLI at proxy size on CPU.

Runs share one spec and one optimiser setting so the compiled train step is reused across tests
(``composer.steps`` caches it); compile time dominates this file.
"""

import json
import math

import numpy as np
import pytest

from cli.main import main
from composer.checkpoint import Checkpoints, MetricsLog
from composer.data import ByteTokenizer, TextSource
from composer.errors import UsageError
from composer.presets import spec_from_pattern
from composer.train import DivergenceError, TrainConfig, train

SPEC = spec_from_pattern("AM", "proxy")
CFG = TrainConfig(steps=8, batch_size=4, seq_len=32, lr=1e-2, eval_every=4, eval_batches=2, checkpoint_every=4,
                  log_every=2)
CLI_SHAPE = ["--steps", "8", "--batch-size", "4", "--seq-len", "32", "--lr", "1e-2"]


def _text(n_lines: int, seed: int = 0) -> str:
    rng = np.random.default_rng(seed)
    words = ["the", "model", "mixes", "attention", "and", "memory", "layers", "to", "recall", "tokens"]
    return "".join(" ".join(rng.choice(words, 8)) + f" {i}.\n" for i in range(n_lines))


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "corpus.txt"
    path.write_text(_text(400))
    return path


@pytest.fixture(scope="module")
def baseline(corpus, tmp_path_factory):
    """An uninterrupted run with a run folder: (result, metrics records)."""
    out = tmp_path_factory.mktemp("runs") / "baseline"
    result = train(SPEC, TextSource(corpus), CFG.replace(out_dir=str(out)))
    return result, MetricsLog.read(out / "metrics.jsonl")


def test_pulse_loss_decreases_and_is_finite(baseline):
    result, records = baseline
    losses = result.train_losses
    assert len(losses) == CFG.steps and all(math.isfinite(x) for x in losses)
    assert np.mean(losses[-2:]) < losses[0] - 0.5
    assert result.eval_loss is not None and math.isfinite(result.eval_loss)
    assert 0.0 <= result.eval_accuracy <= 1.0
    assert result.tokens_per_second > 0 and result.compile_seconds >= 0
    assert [r["step"] for r in records if r["split"] == "validation"] == [4, 8]


def test_run_folder_records(baseline):
    out = baseline[0].out_dir
    saved = json.loads(open(f"{out}/config.json").read())
    assert saved["steps"] == CFG.steps and saved["data"]["source"] == "text"
    assert json.loads(open(f"{out}/spec.json").read())["d_model"] == SPEC.d_model
    assert Checkpoints(f"{out}/checkpoints").all_steps() == [4, 8]


def test_resume_is_exact(corpus, baseline, tmp_path):
    cfg = CFG.replace(out_dir=str(tmp_path / "run"))

    def interrupt(record):
        if record["step"] == 6:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(SPEC, TextSource(corpus), cfg, callback=interrupt)
    resumed = train(SPEC, TextSource(corpus), cfg, resume=True)
    assert resumed.start_step == 4
    # Records hold no wall-clock fields, so the whole logs (train and eval) compare exactly.
    assert MetricsLog.read(tmp_path / "run" / "metrics.jsonl") == baseline[1]


def test_same_seed_same_curve_other_seed_differs(corpus, baseline):
    again = train(SPEC, TextSource(corpus), CFG)
    assert again.train_losses == baseline[0].train_losses
    other = train(SPEC, TextSource(corpus), CFG.replace(seed=1, eval_batches=0, log_every=3))
    assert len(other.train_losses) == CFG.steps and other.train_losses != baseline[0].train_losses


def test_bfloat16_runs_and_is_finite(corpus):
    result = train(SPEC, TextSource(corpus), CFG.replace(dtype="bfloat16", steps=4, eval_batches=0))
    assert len(result.train_losses) == 4 and all(math.isfinite(x) for x in result.train_losses)
    assert result.train_losses[-1] < result.train_losses[0]


def test_wsd_schedule_shape():
    cfg = TrainConfig(steps=100, lr=1.0, warmup_frac=0.1, decay_frac=0.3, final_lr_ratio=0.1)
    lr = np.array([float(cfg.schedule()(s)) for s in range(cfg.steps + 1)])
    assert lr[0] == 0.0 and np.all(np.diff(lr[:11]) > 0) and lr[10] == pytest.approx(1.0)
    assert np.all(lr[10:71] == 1.0)
    assert np.all(np.diff(lr[70:]) < 0) and lr[100] == pytest.approx(0.1)
    flat = TrainConfig(steps=10, lr=2.0, warmup_frac=0.0, decay_frac=0.0)
    assert [float(flat.schedule()(s)) for s in (0, 9)] == [2.0, 2.0]


class _Poisoned:
    """A text source whose train batches from step 5 on hold an out-of-range id (NaN embedding)."""

    def __init__(self, source):
        self.source, self.vocab_size = source, source.vocab_size

    def batch(self, split, step, batch_size, seq_len, *, seed):
        tokens = self.source.batch(split, step, batch_size, seq_len, seed=seed)
        if split == "train" and step >= 5:
            tokens[0, 0] = 10**6
        return tokens


def test_nonfinite_loss_stops_with_clear_error_and_keeps_checkpoint(corpus, tmp_path):
    cfg = CFG.replace(out_dir=str(tmp_path / "run"), checkpoint_every=2)
    with pytest.raises(DivergenceError, match=r"diverged at step 6: loss nan.*Lower the learning rate.*step 4"):
        train(SPEC, _Poisoned(TextSource(corpus)), cfg)
    assert Checkpoints(tmp_path / "run" / "checkpoints").latest_step() == 4


def test_text_source_split_and_determinism(corpus):
    src = TextSource(corpus)
    stream = np.frombuffer(corpus.read_bytes(), np.uint8)
    n_val = src.num_tokens("validation")
    assert n_val == round(stream.size * 0.1) and src.num_tokens() == stream.size
    a = src.batch("validation", 3, 5, 16, seed=7)
    assert a.shape == (5, 17) and a.dtype == np.int32
    np.testing.assert_array_equal(a, src.batch("validation", 3, 5, 16, seed=7))
    assert not np.array_equal(a, src.batch("validation", 4, 5, 16, seed=7))
    val = stream[-n_val:].tobytes()
    assert all(bytes(row.astype(np.uint8)) in val for row in a)


def test_text_source_folder_and_bad_paths(tmp_path):
    (tmp_path / "b.txt").write_text("second file " * 20)
    (tmp_path / "a.txt").write_text("first file " * 20)
    (tmp_path / ".hidden").write_text("ignored")
    src = TextSource(tmp_path)
    assert [p.rsplit("/", 1)[1] for p in src.files] == ["a.txt", "b.txt"]
    assert src.num_tokens() == len("first file " * 20) + len("second file " * 20)
    with pytest.raises(UsageError, match="does not exist"):
        TextSource(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(UsageError, match="holds no files"):
        TextSource(tmp_path / "empty")
    with pytest.raises(UsageError, match="seq-len"):
        src.check_window(10_000)


def test_byte_tokenizer_round_trip():
    tok = ByteTokenizer()
    text = "Hybrid layers: AAMMMM, é, 你好, 🚀"
    ids = tok.encode(text)
    assert ids.dtype == np.int32 and ids.max() < tok.vocab_size == 256
    assert tok.decode(ids) == text


def test_cli_train(corpus, tmp_path, capsys):
    out = tmp_path / "cli"
    argv = ["train", "--pattern", "AM", "--scale", "proxy", "--data", str(corpus), *CLI_SHAPE, "--out", str(out),
            "--eval-every", "4", "--eval-batches", "1", "--no-progress", "--json"]
    assert main(argv) == 0
    assert json.loads(capsys.readouterr().out)["steps"] == 8
    assert (out / "metrics.jsonl").exists()
    assert main(argv) == 2  # occupied run folder without --resume
    assert "--resume" in capsys.readouterr().err


def test_cli_train_lr_grid_chooses_on_dev_and_resumes(corpus, tmp_path, capsys):
    """``--lrs``: one run per rate scored on the dev split, the best scored on validation, the record in
    ``lr_grid.json``; a repeated call with ``--resume`` trains nothing again and chooses the same."""
    out = tmp_path / "grid"
    shape = [x for x in CLI_SHAPE if x not in ("--lr", "1e-2")]
    argv = ["train", "--pattern", "AM", "--scale", "proxy", "--data", str(corpus), *shape, "--out", str(out),
            "--eval-batches", "2", "--lrs", "1e-3,1e-2", "--lr-extend", "0", "--no-progress", "--json"]
    assert main(argv) == 0
    record = json.loads(capsys.readouterr().out)
    dev = {float(k): v for k, v in record["lrs"].items()}
    assert sorted(dev) == [1e-3, 1e-2] and record["lr"] == min(dev, key=dev.get)
    assert record["dev_loss"] == dev[record["lr"]] and math.isfinite(record["val_loss"])
    assert sorted(p.name for p in out.iterdir()) == ["lr1e-02", "lr1e-03", "lr_grid.json"]
    for run in ("lr1e-02", "lr1e-03"):  # every rate's evaluations read the dev split
        cfg = json.loads((out / run / "config.json").read_text())
        assert cfg["eval_split"] == "dev" and cfg["data"]["dev_fraction"] == 0.05
    assert json.loads((out / "lr_grid.json").read_text())["lr"] == record["lr"]
    assert main([*argv, "--resume"]) == 0
    again = json.loads(capsys.readouterr().out)
    assert again["lr"] == record["lr"] and again["val_loss"] == pytest.approx(record["val_loss"])
    assert again["chosen_run"]["start_step"] == again["chosen_run"]["steps"]  # nothing retrained
    assert main([*argv[:-1], "--lr", "1e-3"]) == 2
    assert "not both" in capsys.readouterr().err
    # --pack 2: both rates in one program, the same choice and scores to float rounding
    packed_out = tmp_path / "packed"
    argv_packed = [*argv, "--pack", "2"]
    argv_packed[argv_packed.index(str(out))] = str(packed_out)
    assert main(argv_packed) == 0
    packed = json.loads(capsys.readouterr().out)
    assert packed["lr"] == record["lr"] and packed["val_loss"] == pytest.approx(record["val_loss"], rel=1e-4)
    assert all(packed["lrs"][k] == pytest.approx(v, rel=1e-4) for k, v in record["lrs"].items())
    assert main([*argv_packed, "--resume"]) == 0  # the packed folders read as finished runs
    assert json.loads(capsys.readouterr().out)["chosen_run"]["start_step"] == record["chosen_run"]["steps"]
    assert main([*argv_packed[:-2], "--pack", "0"]) == 2 and "--pack" in capsys.readouterr().err


def test_cli_train_bad_input(corpus, tmp_path, capsys):
    base = ["train", "--pattern", "AM", "--scale", "proxy", "--no-progress", "--out", str(tmp_path / "o")]
    assert main([*base, "--data", str(tmp_path / "nope.txt")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main([*base, "--data", str(corpus), "--steps", "0"]) == 2
    assert "steps" in capsys.readouterr().err
    spec = tmp_path / "spec.json"
    spec.write_text(SPEC.replace(vocab_size=100).to_json())
    assert main(["train", str(spec), "--data", str(corpus), "--no-progress"]) == 2
    assert "vocab_size >= 256" in capsys.readouterr().err


def test_cli_train_refuses_a_model_too_big_for_host_memory(tmp_path, capsys):
    from cli.main import main

    corpus = tmp_path / "c.txt"
    corpus.write_text("hello world " * 200)
    code = main(["train", "--pattern", "AM" * 16, "--scale", "8B", "--data", str(corpus), "--steps", "1",
                 "--out", str(tmp_path / "run")])
    assert code == 2
    assert "GiB" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_validation_text_does_not_depend_on_the_seed(corpus):
    from composer.train import validation_windows

    src = TextSource(corpus)
    a = validation_windows(src, CFG.replace(seed=0))
    b = validation_windows(src, CFG.replace(seed=7))
    assert a.shape == (CFG.eval_batches * CFG.batch_size, CFG.seq_len + 1) and np.array_equal(a, b)


def test_two_seeds_score_the_same_windows_and_a_partial_last_batch(corpus):
    """Evaluation over the whole split: a window count that is not a multiple of the batch is padded
    and the padding dropped; the record names the windows and tokens scored and the loss SE."""
    src = TextSource(corpus)
    total = (src.num_tokens("validation") - 1) // CFG.seq_len
    assert total % CFG.batch_size, "the test needs a partial last batch"
    cfg = CFG.replace(steps=2, eval_every=0, eval_batches=total // CFG.batch_size + 5, checkpoint_every=0)
    r0, r1 = (train(SPEC, src, cfg.replace(seed=s)) for s in (0, 1))
    assert r0.eval_loss != r1.eval_loss and math.isfinite(r0.eval_loss_se) and r0.eval_loss_se > 0
    from composer.steps import eval_step_fn
    from composer.train import _evaluate, init_params, validation_windows

    windows = validation_windows(src, cfg)
    assert len(windows) == total
    graphdef, params = init_params(SPEC, cfg)
    loss, _, _ = _evaluate(eval_step_fn(graphdef), params, windows, CFG.batch_size)
    full, _ = eval_step_fn(graphdef)(params, windows)  # one batch holding every window, no padding
    assert loss == pytest.approx(float(np.mean(full)), rel=1e-5)


@pytest.mark.parametrize("command, field, flag", [
    ("train", "seq_len", "--seq-len"), ("train", "grad_clip", "--grad-clip"), ("train", "seed", "--seed"),
    ("fidelity", "weight_decay", "--weight-decay")])
def test_training_flags_take_their_help_and_type_from_train_config(command, field, flag, capsys):
    """The flags of TrainConfig are generated from its fields: the help is the field's docstring and the
    flag parses to the field's type; nothing restates either (a renamed or retyped field shows here)."""
    import argparse
    import dataclasses

    from cli.commands import fidelity, train
    from cli.commands._common import field_docs
    from composer.train_config import TrainConfig

    with pytest.raises(SystemExit):
        main([command, "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    first = field_docs(TrainConfig)[field].split(". ")[0].rstrip(".")
    assert first[:1].lower() + first[1:] in help_text
    p = argparse.ArgumentParser()
    (train if command == "train" else fidelity).add_arguments(p)
    default = {f.name: f.default for f in dataclasses.fields(TrainConfig)}[field]
    value = p.parse_args([*(["--data", "x"] if command == "train" else []), flag, "3"]).__dict__[field]
    assert type(value) is type(default) and value == 3
