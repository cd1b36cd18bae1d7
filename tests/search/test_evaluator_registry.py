"""The typed evaluation result, the evaluator registry and the ``text`` protocol."""

import math
import re

import pandas as pd
import pytest

from cli.main import main
from search import evaluators
from search.evaluators import DEFAULT_PROTOCOL, Evaluation, EvaluatorConfig, normalize_result, register_evaluator


def test_evaluation_is_typed_and_refuses_a_non_finite_score():
    e = normalize_result({"score": 0.5, "tasks": {"a": {"accuracy": 0.25}}, "steps": {"a": 3, "b": 4}}, "p")
    assert isinstance(e, Evaluation) and e.tasks == {"a": 0.25} and e.steps == 7 and e.protocol == "p"
    with pytest.raises(ValueError, match="finite"):
        Evaluation(score=math.nan, protocol="p")
    with pytest.raises(ValueError, match="no score"):
        normalize_result({"tasks": {}}, "p")


class _Const:
    """A user's evaluator: scores a layout by its share of attention layers."""

    def __init__(self, config):
        self.config = config
        self.protocol = config.label

    def spec(self, pattern):
        from composer.presets import spec_from_pattern

        return spec_from_pattern(pattern, "proxy")

    def __call__(self, pattern, seed=None):
        share = pattern.count("A") / len(pattern)
        seed = self.config.seed if seed is None else seed
        return Evaluation(score=share, protocol=self.protocol, tasks={"attention_share": share},
                          seed=seed, pattern=pattern, steps=1, tokens=0, wall_s=0.0)


@pytest.fixture
def const_kind(monkeypatch):
    monkeypatch.setattr(evaluators, "EVALUATORS", dict(evaluators.EVALUATORS))
    register_evaluator("const")(_Const)
    return "const"


def test_a_registered_evaluator_runs_a_search_end_to_end(const_kind, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code = main(["search", "--evaluator", const_kind, "--quiet", "--depth", "3", "--budget", "8", "--scale", "350M",
                 "--name", "c"])
    assert code == 0
    df = pd.read_parquet(tmp_path / "runs" / "c" / "leaderboard.parquet")
    ok = df[df["status"] == "ok"]
    assert (ok["score"] == ok["pattern"].str.count("A") / 3).all()
    assert set(ok["protocol"]) == {f"const-{DEFAULT_PROTOCOL}"} and "task_attention_share" in df.columns
    assert (df["status"] == "ok").all() and (df["seed"] >= 10_000).sum() > 0  # rescored on fresh seeds too
    # the one default; an explicit kind wins over the kind the default protocol is registered with
    assert EvaluatorConfig(kind=const_kind).build().protocol == f"const-{DEFAULT_PROTOCOL}"


def test_unknown_evaluator_is_a_usage_error(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["search", "--evaluator", "nope", "--quiet", "--budget", "2", "--scale", "350M"]) == 2
    assert "unknown evaluator 'nope'" in capsys.readouterr().err


def test_duplicate_kind_is_refused(const_kind):
    with pytest.raises(ValueError, match="already registered"):
        register_evaluator(const_kind)(lambda c: None)


def test_text_protocol_scores_bits_per_byte_on_real_text():
    """``--protocol text`` picks the text evaluator; a few steps on the corpus give a sane score."""
    from search.evaluators.text import TextEvaluator, score_from_bpb

    config = EvaluatorConfig(protocol="text", seed=0, steps_scale=0.02)
    ev = config.build()
    assert isinstance(ev, TextEvaluator) and ev.protocol == "text@steps*0.02"
    a, b = ev("AMAM"), EvaluatorConfig(protocol="text", seed=1, steps_scale=0.02).build()("AMAM")
    assert 0 < a.score < 1 and a.score == pytest.approx(score_from_bpb(a.tasks["text_bpb"]))
    assert 1.0 < a.tasks["text_bpb"] < 8.0 and a.steps == 6 and a.seed == 0
    assert a.score != b.score  # the seed changes the model, not the validation text
    assert a.details["recipe"]["val_windows"] == b.details["recipe"]["val_windows"]


def test_text_lr_protocol_chooses_the_rate_on_dev_and_scores_it_on_validation(monkeypatch):
    """``--protocol text-lr`` trains every rate of its grid, picks the best dev loss, and reports the
    chosen run's validation loss; the choice does not change when validation would say otherwise."""
    import composer.train
    from search.evaluators.text import TEXT_PROTOCOLS, TextEvaluator, score_from_bpb

    seen = []
    real = composer.train.evaluate_run

    def spy(spec, source, config, split):
        seen.append((config.lr, split))
        return real(spec, source, config, split)

    monkeypatch.setattr(composer.train, "evaluate_run", spy)
    ev = EvaluatorConfig(protocol="text-lr", seed=0, steps_scale=0.02).build()
    assert isinstance(ev, TextEvaluator) and ev.protocol == "text-lr@steps*0.02"
    out = ev("AMAM")
    dev = {float(k): v for k, v in out.details["dev_loss"].items()}
    assert set(TEXT_PROTOCOLS["text-lr"]().lrs) <= set(dev)
    assert out.details["lr"] == min(dev, key=dev.get)
    assert seen == [(out.details["lr"], "validation")]  # one validation read, of the chosen run only
    assert out.score == pytest.approx(score_from_bpb(out.tasks["text_bpb"]))


def test_text_noconv_cuts_the_short_convolution_of_recurrent_layers_only():
    """``--protocol text-noconv`` trains the proxy model with every Mamba-2 and Gated DeltaNet layer at a
    one-tap convolution and leaves attention and MLP layers as they are; the model really changes (its
    architecture id, its parameters and its score differ from ``text``'s on the same seed)."""
    noconv = EvaluatorConfig(protocol="text-noconv", seed=0, steps_scale=0.02).build()
    text = EvaluatorConfig(protocol="text", seed=0, steps_scale=0.02).build()
    spec = noconv.spec("SMGMAM")
    assert [dict(layer.options).get("d_conv") for layer in spec.layers] == [1, None, 1, None, None, None]
    assert text.spec("AMAM") == noconv.spec("AMAM")  # no recurrent layer: the same model
    a, b = noconv("SMAM"), text("SMAM")
    assert a.arch_id != b.arch_id and a.score != b.score
    assert a.details["recipe"]["layer_options"] == {"S": {"d_conv": 1}, "G": {"d_conv": 1}}
    assert "layer_options" not in b.details["recipe"]


def test_text_long_trains_and_scores_on_longer_windows_with_the_same_bytes():
    """``--protocol text-long`` is ``text`` on 1,024-byte windows, 2 per update: the same bytes per update
    and validation bytes, stored in the recipe; the longer context really changes the run's score."""
    long, text = (EvaluatorConfig(protocol=p, seed=0, steps_scale=0.02).build() for p in ("text-long", "text"))
    a, b = long("AMAM"), text("AMAM")
    ra, rb = a.details["recipe"], b.details["recipe"]
    assert (ra["seq_len"], ra["batch_size"]) == (1024, 2) and (rb["seq_len"], rb["batch_size"]) == (128, 16)
    assert ra["seq_len"] * ra["batch_size"] == rb["seq_len"] * rb["batch_size"]
    assert ra["val_windows"] * ra["seq_len"] == rb["val_windows"] * rb["seq_len"]
    assert long.spec("AMAM").replace(max_seq_len=256) == text.spec("AMAM")  # only built for longer windows
    assert a.score != b.score


def test_a_diverging_text_run_is_an_error_row_naming_the_step():
    """An absurd learning rate makes the text model's loss non-finite for real; the evaluation stops at
    that step and becomes an error row (not retried: the layout, not the worker, failed)."""
    import dataclasses

    from search.evaluators import run_one
    from search.evaluators.text import TextEvaluator, TextProtocol

    recipe = TextProtocol()
    absurd = TextEvaluator(EvaluatorConfig(protocol="text", seed=0, steps_scale=0.02),
                           dataclasses.replace(recipe, train=recipe.train.replace(lr=1e30)))
    out = run_one(absurd, "AM")
    assert out.result is None and not out.transient
    assert re.match(r"DivergenceError: .*diverged at step \d+: loss .*(nan|inf)", out.error), out.error


def test_an_evaluator_without_a_seed_argument_gets_a_clear_error_row():
    from search.evaluators import run_one

    class NoSeed:
        protocol = "x"

        def __call__(self, pattern):
            return {"score": 1.0}

    assert run_one(NoSeed(), "AM").result.score == 1.0
    out = run_one(NoSeed(), ("AM", 10_000))
    assert out.result is None and "seed=None" in out.error
