"""The MAD proxy evaluator: metrics, the switch model, compile reuse, scoring end to end, the CLI."""

import dataclasses
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import primitives
from cli.main import main
from composer.mad import IGNORE, InContextRecallConfig
from composer.mad import protocol as protocols
from composer.mad.evaluate import EvalResult, Evaluator, evaluate
from composer.mad.metrics import cross_entropy, macro_accuracy, macro_accuracy_np, micro_counts
from composer.mad.protocol import CPU, PAPER
from composer.mad.proxy_model import ProxyModel
from composer.mad.switch_model import SwitchStack
from composer.model import LM
from composer.presets import spec_from_pattern
from composer.spec import LayerSpec

# A protocol small enough to compile and train every task in seconds (widths and steps shrunk).
TINY = dataclasses.replace(
    CPU, name="tiny", dims=dataclasses.replace(CPU.dims, d_model=32, n_heads=2, n_kv_heads=2, d_ffn=64),
    steps={t: 4 for t in CPU.steps}, eval_every={t: 2 for t in CPU.steps}, num_test=32, eval_batch=32)


@pytest.fixture(scope="module")
def evaluator():
    return Evaluator(TINY)


def test_micro_and_macro_accuracy_skip_ignored_positions():
    targets = jnp.array([[2, IGNORE, 1, 0], [IGNORE, 2, 2, IGNORE]])
    pred = jnp.array([[2, 0, 0, 0], [1, 2, 1, 1]])
    logits = jax.nn.one_hot(pred, 3) * 5.0
    correct, count = micro_counts(logits, targets)
    assert (int(correct), int(count)) == (3, 5)
    # per class recall: class 0 -> 1/1, class 1 -> 0/1, class 2 -> 2/3; all present
    assert float(macro_accuracy(logits, targets)) == pytest.approx((1 + 0 + 2 / 3) / 3)
    assert macro_accuracy_np(np.asarray(pred), np.asarray(targets)) == pytest.approx((1 + 0 + 2 / 3) / 3)


def test_macro_counts_a_predicted_but_absent_class_as_zero():
    targets = jnp.array([[0, 0, IGNORE]])
    logits = jax.nn.one_hot(jnp.array([[0, 1, 1]]), 3)  # class 1 predicted, never a target
    # class 0: recall 1/2; class 1: 0 (predicted, never a target); class 2: absent
    assert float(macro_accuracy(logits, targets)) == pytest.approx(0.25)


def test_cross_entropy_ignores_unscored_positions():
    logits = jnp.log(jnp.array([[[0.5, 0.5], [0.9, 0.1]]]))
    total, count = cross_entropy(logits, jnp.array([[0, IGNORE]]))
    assert int(count) == 1 and float(total) == pytest.approx(np.log(2), rel=1e-5)


def _lm_params_in_switch(lm: LM, stack: SwitchStack, types: np.ndarray) -> dict:
    flat, norms = [], []
    for layer, t in zip(lm.layers, types):
        _, params, _ = nnx.split(layer.prim, nnx.Param, ...)
        flat.append(stack.branches[t].flatten(params, stack.width))
        norms.append(layer.norm.scale[...])
    return {"embed": lm.embed[...], "layers": jnp.stack(flat), "norms": jnp.stack(norms),
            "final_norm": lm.final_norm.scale[...]}


def test_switch_stack_equals_the_dedicated_lm_for_every_registered_primitive():
    space = tuple(LayerSpec(name) for name in primitives.names())
    pattern = "".join(primitives.get(n).shorthand for n in primitives.names()) + "AM"
    spec = spec_from_pattern(pattern, "proxy", vocab_size=16)
    lm = LM(spec, rngs=nnx.Rngs(3))
    lm.final_norm.scale[...] = jnp.linspace(0.5, 1.5, spec.d_model)  # non-trivial gains
    stack = SwitchStack(space, spec.dims, unroll=1)  # a rolled layer loop: each branch compiles once
    model = ProxyModel(stack, 16)
    types = stack.types(spec.layers)
    params = _lm_params_in_switch(lm, stack, types)
    tokens = jax.random.randint(jax.random.key(0), (2, 13), 0, 16)
    got = jax.jit(model.logits)(params, types, tokens)
    graphdef, state = nnx.split(lm)
    want = jax.jit(lambda state, x: nnx.merge(graphdef, state)(x))(state, tokens)
    np.testing.assert_allclose(got, want, rtol=2e-5, atol=2e-5)


def test_switch_init_of_a_layer_depends_only_on_seed_position_and_primitive():
    spec = spec_from_pattern("AM", "proxy")
    stack = SwitchStack((LayerSpec("A"), LayerSpec("M")), spec.dims)
    a = stack.init(jax.random.key(1), stack.types(spec_from_pattern("AMA", "proxy").layers))
    b = stack.init(jax.random.key(1), stack.types(spec_from_pattern("MMA", "proxy").layers))
    np.testing.assert_array_equal(a["layers"][2], b["layers"][2])
    assert not np.array_equal(a["layers"][0], b["layers"][0])
    size_m = stack.branches[1].size
    assert np.all(np.asarray(b["layers"][0][size_m:]) == 0)  # M is shorter than A: zero tail


def test_fan_in_init_rescales_only_the_dense_projections():
    dims = spec_from_pattern("AM", "proxy").dims  # d=64, d_ffn=176
    stack = SwitchStack((LayerSpec("A"), LayerSpec("M")), dims, init="fan_in")
    params = stack.init(jax.random.key(0), np.array([0, 1], np.int32))["layers"]
    wq, _, _, wo = (stack.branches[0].unflatten(params[0])[k][...] for k in ("wq", "wk", "wv", "wo"))
    w_down = stack.branches[1].unflatten(params[1])["w_down"][...]
    assert np.std(wq) == pytest.approx(64 ** -0.5, rel=0.05)  # [d, h, k]: fan-in d
    assert np.std(wo) == pytest.approx(64 ** -0.5, rel=0.05)  # [h, k, d]: fan-in h*k
    assert np.std(w_down) == pytest.approx(176 ** -0.5, rel=0.05)
    plain = SwitchStack((LayerSpec("A"),), dims).init(jax.random.key(0), np.array([0], np.int32))["layers"]
    assert float(np.std(plain[0])) == pytest.approx(0.02, rel=0.05)


def test_evaluate_scores_every_task_end_to_end(evaluator):
    result = evaluator.evaluate("AM", seed=0)
    assert isinstance(result, EvalResult)
    assert set(result.tasks) == set(CPU.settings)
    assert all(0.0 <= acc <= 1.0 for acc in result.tasks.values())
    assert result.score == pytest.approx(np.mean(list(result.tasks.values())))
    assert result.steps == {t: 4 for t in CPU.steps} and result.total_steps == 24
    assert result.tokens["memorization"] == 4 * 32 * 32
    assert result.pattern == "AM" and result.arch_id.startswith("1A1M-")
    assert result.details["in_context_recall"][0]["curve_steps"] == [2, 4]
    json.dumps(result.to_dict())


def test_second_candidate_of_the_same_depth_reuses_compiled_runs(evaluator):
    evaluator.evaluate("AM", tasks="memorization,compression")
    traces = evaluator.trace_count
    again = evaluator.evaluate("MA", seed=1, tasks=["memorization", "compression"])
    assert evaluator.trace_count == traces
    assert again.compile_s == 0.0
    evaluator.evaluate("MM", tasks="memorization")  # another primitive set: its own compile
    assert evaluator.trace_count == traces + 1


def test_same_seed_same_result(evaluator):
    a = evaluator.evaluate("MA", seed=2, tasks="selective_copying")
    b = evaluator.evaluate("MA", seed=2, tasks="selective_copying")
    assert a.tasks == b.tasks


def test_paper_protocol_runs_its_sweep_with_one_compile():
    tiny_paper = dataclasses.replace(
        PAPER, dims=dataclasses.replace(PAPER.dims, d_model=32, d_ffn=64), epochs=2, num_test=64, eval_batch=32,
        settings={"memorization": dataclasses.replace(PAPER.settings["memorization"], num_train_examples=200)})
    ev = Evaluator(tiny_paper)
    result = ev.evaluate("AM", tasks="memorization")
    assert ev.trace_count == 1
    detail = result.details["memorization"][0]
    assert detail["runs"] == 6 and len(detail["sweep"]) == 6
    assert result.steps["memorization"] == 6 * 2 * 2  # 6 runs x 2 epochs x ceil(200 / 128)
    assert detail["curve_steps"] == [2, 4]  # evaluated once per epoch
    assert result.tasks["memorization"] == max(r["acc"] for r in detail["sweep"])


def test_bad_input_is_a_usage_error():
    from composer.errors import UsageError

    with pytest.raises(UsageError, match="valid tasks"):
        evaluate("AM", tasks="nope")
    with pytest.raises(UsageError, match="valid protocols"):
        evaluate("AM", protocol="gpu")
    with pytest.raises(UsageError, match="registered"):
        evaluate("AXM")


@pytest.mark.parametrize("argv, message", [
    (["--pattern", "AQ"], "unknown primitive"),
    (["--pattern", "AM", "--protocol", "capacity", "--tasks", "recall"], "valid tasks"),
    (["--pattern", "AM", "--tasks", "recall"], "has no MAD tasks; drop --tasks"),  # the default is text
    (["--pattern", "AM", "--protocol", "tpu"], "registered protocols"),
    ([], "--pattern"),
])
def test_cli_bad_input_exits_2(capsys, argv, message):
    assert main(["evaluate", *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_cli_json(capsys, monkeypatch):
    monkeypatch.setitem(protocols.PROTOCOLS, "tiny", TINY)
    assert main(["evaluate", "--pattern", "1A1M", "--protocol", "tiny", "--tasks", "memorization", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["pattern"] == "AM" and set(out["tasks"]) == {"memorization"}
    for key in ("arch_id", "score", "wall_s", "compile_s"):
        assert key in out


@pytest.mark.slow
def test_attention_learns_in_context_recall_and_mlp_does_not():
    ev = Evaluator(dataclasses.replace(CPU, settings={"in_context_recall": CPU.settings["in_context_recall"]}))
    attention = ev.evaluate("AAMMMM", tasks="in_context_recall").details["in_context_recall"][0]["acc_final"]
    mlp = ev.evaluate("MMMMMM", tasks="in_context_recall").details["in_context_recall"][0]["acc_final"]
    assert attention > 0.9 and mlp < 0.35
    assert isinstance(CPU.settings["in_context_recall"], InContextRecallConfig)


def test_a_diverging_run_is_an_error_naming_the_task_and_step():
    """An absurd learning rate makes the loss NaN/inf for real; the evaluation stops with the task and step."""
    from composer.errors import DivergenceError

    absurd = dataclasses.replace(TINY, name="tiny-absurd-lr", lrs=(1e30,))
    with pytest.raises(DivergenceError, match=r"task memorization \(setting 0\): training diverged.* by step 2"):
        Evaluator(absurd).evaluate("AM", tasks="memorization")


def test_a_search_records_a_diverged_evaluation_as_an_error_row():
    from search.evaluators import run_one

    class Absurd:
        protocol = "tiny-absurd-lr"

        def __call__(self, pattern, seed=None):
            return Evaluator(dataclasses.replace(TINY, name=self.protocol, lrs=(1e30,))).evaluate(
                pattern, tasks="memorization")

    out = run_one(Absurd(), "AM")
    assert out.result is None and out.error.startswith("DivergenceError: task memorization")
