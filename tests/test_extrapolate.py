"""Extrapolator (docs/method.md §2.4): stretching, stacking, auto, and the ``composer extrapolate`` CLI."""

import json
import random
from fractions import Fraction

import pytest

import primitives
from cli.commands.inspect import inspect_dict
from cli.main import main
from composer.presets import SCALES, get_scale, llama_spec, spec_from_pattern
from composer.spec import SpecError, load_spec
from scaling.counting import non_embedding_params
from scaling.extrapolate import extrapolate, runs, stack, stretch

TARGETS = [n for n, s in SCALES.items() if not s.is_proxy]  # 100M, 350M, 1B, 3B, 8B
COMPOSITE_16 = "AAMMMMMAAMMMAMMM"
UNUSED = next(c for c in "ZYXVUTSRQPONLKJIHGFEDCB" if c not in primitives.shorthands())

# Layer sizes at 1B widths (d=2048, heads 32, kv 8, head dim 64, d_ffn 8192), pre-norm gain included:
# A = 2*d*h*k + 2*d*n*k + d = 2*2048*2048 + 2*2048*512 + 2048 = 10,487,808
# M = 3*d*f + d = 3*2048*8192 + 2048 = 50,333,696
A_1B, M_1B = 10_487_808, 50_333_696


def test_stretch_hand_computed():
    # runs (A,2),(M,4); s = 3/2: ceil(3) = 3, ceil(6) = 6
    assert stretch("AAMMMM", Fraction(3, 2)) == "AAA" + "M" * 6
    # runs (A,1),(M,2),(A,1); s = 4/3: ceil(4/3) = 2, ceil(8/3) = 3, ceil(4/3) = 2
    assert stretch("AMMA", Fraction(4, 3)) == "AAMMMAA"
    # exact arithmetic: 0.1 * 10 is 1, not ceil(1.0000000000000000555) = 2
    assert stretch("A" * 10, 0.1) == "A"
    assert stretch("AM", 1) == "AM"


def test_stack_hand_computed():
    # floor(230/100) = 2 copies; r = 0.3: A 2*0.3 = 0.6 -> 1, M 4*0.3 = 1.2 -> 1
    assert stack("AAMMMM", 230, 100) == "AAMMMM" * 2 + "AM"
    # r = 0.1: A 0.2 -> 0, M 0.4 -> 0: both runs dropped
    assert stack("AAMMMM", 210, 100) == "AAMMMM" * 2
    # r = 0.25: A 0.5 -> 1 (half rounds up), M 1.0 -> 1
    assert stack("AAMMMM", 225, 100) == "AAMMMM" * 2 + "AM"
    # no whole copy: r = 0.5: A 1.0 -> 1, M 2.0 -> 2
    assert stack("AAMMMM", 50, 100) == "AMM"
    # r = 1/4 of "AMMA": runs 1, 2, 1 -> 0.25 -> 0, 0.5 -> 1, 0.25 -> 0; what is left is "M"
    assert stack("AMMA", 125, 100) == "AMMA" + "M"


def test_stack_and_stretch_reject_empty_and_nonpositive():
    with pytest.raises(SpecError, match="nothing is left"):
        stack("AM", 1, 10)  # r = 0.1: both runs round to zero
    with pytest.raises(SpecError, match="factor"):
        stretch("AM", 0)


def test_extrapolate_aammmm_to_1b_hand_computed():
    # m = 2A + 4M = 222,310,400; M = 16 Llama blocks = 16 * (A + M) = 973,144,064
    m, M = 2 * A_1B + 4 * M_1B, 16 * (A_1B + M_1B)
    stacked = extrapolate("AAMMMM", "1B", "stack")
    assert (stacked.m, stacked.M) == (m, M)
    # floor(M/m) = 4 copies (889,241,600); r = 83,902,464 / m = 0.377: A 0.75 -> 1, M 1.51 -> 2
    assert stacked.spec.pattern == "AAMMMM" * 4 + "AMM"
    # s = 4.377: A ceil(8.75) = 9, M ceil(17.51) = 18; real = 9A + 18M + final norm 2048
    stretched = extrapolate("AAMMMM", "1B", "stretch")
    assert stretched.spec.pattern == "A" * 9 + "M" * 18
    assert stretched.non_embedding_params == 9 * A_1B + 18 * M_1B + 2048 == 1_000_398_848
    assert stretched.overshoot_ratio == pytest.approx(1_000_398_848 / 973_146_112)
    assert extrapolate("2A4M", "1B").rule == "stack"  # auto: 6 layers <= 8


def test_extrapolate_composite_16_to_1b():
    # m = 5A + 11M = 606,109,696; s = 1.6056
    # stretch: 2A -> 4, 5M -> ceil(8.03) = 9, 2A -> 4, 3M -> ceil(4.82) = 5, 1A -> 2, 3M -> 5
    e = extrapolate(COMPOSITE_16, "1B")
    assert e.rule == "stretch" and e.m == 5 * A_1B + 11 * M_1B
    assert e.spec.pattern == "A" * 4 + "M" * 9 + "A" * 4 + "M" * 5 + "AA" + "M" * 5
    # stack: 1 copy, r = 0.6056: 1.21 -> 1, 3.03 -> 3, 1.21 -> 1, 1.82 -> 2, 0.61 -> 1, 1.82 -> 2
    assert extrapolate(COMPOSITE_16, "1B", "stack").spec.pattern == COMPOSITE_16 + "AMMMAMMAMM"


@pytest.mark.parametrize("scale", TARGETS)
@pytest.mark.parametrize("rule", ["stack", "stretch", "auto"])
def test_llama_layout_reproduces_llama_depth(scale, rule):
    e = extrapolate("AM", scale, rule)
    llama = llama_spec(scale)
    assert e.spec.n_layers == 2 * get_scale(scale).llama_blocks == llama.n_layers
    assert e.s == e.M / e.m == get_scale(scale).llama_blocks
    assert e.non_embedding_params == e.target_non_embedding_params == non_embedding_params(llama)
    if rule != "stretch":
        assert e.spec == llama


def test_targets_match_the_named_scale_table():
    table = {"100M": 0.10e9, "350M": 0.35e9, "1B": 0.97e9, "3B": 2.78e9, "8B": 7.0e9}  # docs/method.md §2.4
    for scale, target in table.items():
        assert extrapolate("AM", scale).target_non_embedding_params == pytest.approx(target, rel=0.05)


def _random_patterns(n=30, seed=0):
    rng = random.Random(seed)
    return ["".join(rng.choice("AMW") for _ in range(rng.randint(1, 12))) for _ in range(n)]


def test_stretch_keeps_run_order_and_ratio_within_rounding():
    rng = random.Random(1)
    for pattern in _random_patterns():
        s = Fraction(rng.randint(1, 400), rng.randint(1, 60))
        src, out = runs(pattern), runs(stretch(pattern, s))
        assert [p for p, _ in out] == [p for p, _ in src]
        for (_, h), (_, h_out) in zip(src, out):
            assert s * h <= h_out < s * h + 1


def test_stack_starts_with_whole_copies():
    rng = random.Random(2)
    for pattern in _random_patterns():
        m = rng.randint(10, 100)
        M = rng.randint(m, 20 * m)
        out = stack(pattern, M, m)
        q = M // m
        assert out[: q * len(pattern)] == pattern * q
        rest = out[q * len(pattern):]
        assert len(rest) <= len(pattern) and set(rest) <= set(pattern)


@pytest.mark.parametrize("pattern", ["AM", "AAMMMM", "AMMA", COMPOSITE_16, "MWMAAW"])
def test_more_parameters_never_give_fewer_layers(pattern):
    m = 97
    for rule in (lambda M: stack(pattern, M, m), lambda M: stretch(pattern, Fraction(M, m))):
        depths = [len(rule(M)) for M in range(m // 2 + 1, 12 * m)]
        assert depths == sorted(depths)
    for rule in ("stack", "stretch", "auto"):
        depths = [extrapolate(pattern, scale, rule).spec.n_layers for scale in TARGETS]
        assert depths == sorted(depths)


@pytest.mark.parametrize("scale", TARGETS)
def test_real_params_against_target(scale):
    for pattern in ("AAMMMM", COMPOSITE_16, "AWMMM"):
        stretched = extrapolate(pattern, scale, "stretch")
        assert stretched.overshoot_ratio >= 1  # ceil never undershoots
        stacked = extrapolate(pattern, scale, "stack")
        layers = stacked.non_embedding_params - stacked.spec.d_model
        assert abs(layers - stacked.M) <= stacked.m / 2  # each run rounds by at most half a layer


def test_sliding_window_sizes_and_options_come_from_the_primitive():
    small = spec_from_pattern("AWMM", "proxy", layer_options={"W": {"window": 64}})
    e = extrapolate(small, "1B", "stack")
    # W has attention's projections: m = 2 * A + 2 * M at 1B widths; s = 16(A + M) / m = 8 exactly
    assert e.m == 2 * A_1B + 2 * M_1B and e.spec.pattern == "AWMM" * 8
    assert e.spec.d_model == 2048 and e.spec.vocab_size == 128_256
    assert all(l.option_dict == {"window": 64} for l in e.spec.layers if l.shorthand == "W")


def test_a_new_primitive_is_sized_by_its_own_param_count(monkeypatch):
    letter = UNUSED

    class DoubleMLP(primitives.Primitive):
        name, shorthand, OPTIONS = "test_double_mlp", letter, {}

        @classmethod
        def param_count(cls, dims, **options):
            return 6 * dims.d_model * dims.d_ffn

    monkeypatch.setitem(primitives.base.REGISTRY, DoubleMLP.name, DoubleMLP)
    monkeypatch.setitem(primitives.base._BY_SHORTHAND, letter, DoubleMLP)
    e = extrapolate("A" + letter, "1B", "stretch")
    # the new layer weighs two MLPs but carries one norm: m = A + 2M - d
    assert e.m == A_1B + 2 * M_1B - 2048
    assert e.spec.pattern == stretch("A" + letter, Fraction(e.M, e.m))


def test_widths_first_then_depth():
    proxy = spec_from_pattern("AAMMMM", "proxy")
    assert extrapolate(proxy, "350M").spec == extrapolate("AAMMMM", "350M").spec
    with pytest.raises(SpecError, match="valid rules"):
        extrapolate("AM", "1B", "double")


def test_matches_instantiated_model():
    import jax
    from flax import nnx

    from composer.model import LM

    e = extrapolate(spec_from_pattern("AWM", "proxy", layer_options={"W": {"window": 8}}), "tiny", "stretch")
    model = nnx.eval_shape(lambda: LM(e.spec, rngs=nnx.Rngs(0)))
    leaves = jax.tree.leaves(nnx.state(model, nnx.Param))
    assert sum(x.size for x in leaves) - e.spec.vocab_size * e.spec.d_model == e.non_embedding_params


def test_cli_json(capsys):
    assert main(["extrapolate", "--pattern", "2A4M", "--scale", "1B", "--rule", "stack", "--match", "none",
                 "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    e = extrapolate("AAMMMM", "1B", "stack")
    assert set(inspect_dict(e.spec)) | {"rule", "scale", "target_non_embedding_params"} <= set(out)
    assert out["pattern"] == e.spec.pattern and out["n_layers"] == 27
    assert (out["rule"], out["scale"], out["target_non_embedding_params"]) == ("stack", "1B", 973_146_112)
    assert out["match"] == "none" and out["param_ratio"] == e.param_ratio


def test_cli_matches_parameters_by_default(capsys):
    assert main(["extrapolate", "--pattern", "2A4M", "--scale", "1B", "--rule", "stack", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    e = extrapolate("AAMMMM", "1B", "stack", match="params")
    assert out["match"] == "params" and out["pattern"] == e.spec.pattern and abs(out["param_ratio"] - 1) <= 0.02
    assert out["non_embedding_params"] == e.non_embedding_params
    assert main(["extrapolate", "--pattern", "2A4M", "--scale", "1B", "--match", "bytes"]) == 2
    assert "--match: unknown match 'bytes'" in capsys.readouterr().err


def test_cli_out_writes_loadable_spec(tmp_path, capsys):
    path = tmp_path / "big.json"
    assert main(["extrapolate", "--pattern", COMPOSITE_16, "--scale", "350M", "--out", str(path)]) == 0
    assert load_spec(str(path)) == extrapolate(COMPOSITE_16, "350M", "auto", match="params").spec
    assert [p.name for p in tmp_path.iterdir()] == ["big.json"]  # no temp file left behind
    text = capsys.readouterr().out
    from composer.spec import run_length

    assert "by stretching" in text and run_length(load_spec(str(path)).pattern) in text and "matched by params" in text


def test_cli_spec_file_keeps_options(tmp_path, capsys):
    path = tmp_path / "small.json"
    path.write_text(spec_from_pattern("AWMM", "proxy", layer_options={"W": {"window": 64}}).to_json())
    assert main(["extrapolate", str(path), "--scale", "1B", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["pattern"] == "AWMM" * 8 and out["d_model"] == 2048


@pytest.mark.parametrize("argv, expected", [
    (["--pattern", "AAMMMM", "--scale", "2B"], ["100M", "350M", "1B", "3B", "8B"]),
    (["--pattern", f"AA{UNUSED}M", "--scale", "1B"], ["A=attention", "M=swiglu"]),
    (["--pattern", "AAMMMM", "--scale", "1B", "--rule", "double"], ["stack", "stretch", "auto"]),
    (["--pattern", "AAMMMM"], ["--scale"]),
])
def test_cli_bad_input_exits_2(argv, expected, capsys):
    assert main(["extrapolate", *argv]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    assert all(word in err for word in expected)
