"""ArchSpec: frozen, hashable, exact JSON round trip, schema-checked loading, arch ids, presets."""

import dataclasses
import json

import pytest

from composer.presets import LAYOUTS, SCALES, layout, llama_spec, spec_from_pattern
from composer.spec import ArchSpec, LayerSpec, SpecError, arch_id, load_spec, parse_pattern, run_length


def _spec(pattern="AAMMMM", **kw):
    return spec_from_pattern(pattern, "proxy", **kw)


def test_frozen_and_hashable():
    s = _spec()
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.d_model = 3
    assert hash(s) == hash(_spec()) and s == _spec()
    assert len({s, _spec(), _spec("AMAMAM")}) == 2


@pytest.mark.parametrize("pattern", ["AAMMMM", "AWMW", "M"])
def test_json_round_trip_exact(pattern):
    s = _spec(pattern, layer_options={"W": {"window": 7}}, tie_embeddings=False, norm_eps=1e-6)
    text = s.to_json()
    again = ArchSpec.from_json(text)
    assert again == s and again.to_json() == text and arch_id(again) == arch_id(s)


def test_depth_is_derived_and_pattern_readable():
    s = _spec("2A4M")
    assert s.n_layers == 6 and s.pattern == "AAMMMM" and "n_layers" not in s.to_dict()


def test_arch_id_format_and_content_hash():
    a, b = _spec(), _spec(d_model=128, n_heads=8)
    assert arch_id(a).startswith("2A4M-") and len(arch_id(a).split("-")[1]) == 6
    assert arch_id(a) != arch_id(b)  # same pattern, different widths


def test_run_length_and_parse():
    assert run_length("AAMMMMA") == "2A4M1A"
    assert parse_pattern("2A4M") == "AAMMMM" == parse_pattern("aammmm")
    with pytest.raises(SpecError, match="unknown primitive shorthand"):
        parse_pattern("AQM")
    with pytest.raises(SpecError, match="not a layout"):
        parse_pattern("A-M")


@pytest.mark.parametrize(
    "mutate, field",
    [
        (lambda d: d.update(d_model=-1), "d_model"),
        (lambda d: d.update(n_kv_heads=3), "n_kv_heads"),
        (lambda d: d.update(layers=[]), "layers"),
        (lambda d: d.update(layers=[{"primitive": "nope"}]), "layers"),
        (lambda d: d.update(layers=[{"primitive": "W", "options": {"window": 0}}]), "window"),
        (lambda d: d.update(layers=[{"primitive": "A", "options": {"colour": 1}}]), "colour"),
        (lambda d: d.update(rope_theta="big"), "rope_theta"),
        (lambda d: d.update(extra_field=1), "extra_field"),
        (lambda d: d.pop("vocab_size"), "vocab_size"),
    ],
)
def test_bad_json_names_the_field(mutate, field):
    d = _spec().to_dict()
    mutate(d)
    with pytest.raises(SpecError, match=field):
        ArchSpec.from_json(json.dumps(d))


def test_malformed_json_and_missing_file(tmp_path):
    p = tmp_path / "bad.json"
    p.write_text("{not json")
    with pytest.raises(SpecError, match="not valid JSON"):
        load_spec(str(p))
    with pytest.raises(SpecError, match="cannot read"):
        load_spec(str(tmp_path / "missing.json"))


def test_layer_accepts_shorthand_and_canonicalises():
    assert LayerSpec("A").primitive == "attention"
    assert LayerSpec("W", (("window", 9),)).option_dict == {"window": 9}


def test_named_scales_and_layouts():
    assert {"100M", "350M", "1B", "3B", "8B", "proxy"} <= set(SCALES)
    assert llama_spec("1B").n_layers == 32 and llama_spec("1B").d_model == 2048
    assert layout("llama", 6) == "AMAMAM"
    assert layout("striped_1_2", 6) == "AMMAMM"
    assert layout("composite_16", 16) == "AAMMMMMAAMMMAMMM"
    sandwich = layout("sandwich", 8)
    assert sandwich.count("A") == sandwich.count("M") == 4 and sandwich.startswith("AA") and sandwich.endswith("MM")
    assert layout("jamba", 16).count("A") == 1 and layout("jamba", 16).count("S") == 7
    assert layout("qwen3_next", 8) == "GMGMGMAM" and layout("samba", 4) == "SMWM"
    nemotron = layout("nemotron_h", 48)
    assert 0.06 <= nemotron.count("A") / 48 <= 0.1
    for name in LAYOUTS:
        assert len(layout(name, 12)) == 12
    with pytest.raises(SpecError, match="valid layouts"):
        layout("nope", 4)
    with pytest.raises(SpecError, match="valid scales"):
        spec_from_pattern("AM", "9B")


def test_a_run_of_zero_layers_is_refused_naming_the_field():
    from composer.spec import SpecError, parse_pattern

    assert parse_pattern("2A4M") == "AAMMMM"
    with pytest.raises(SpecError, match=r"^pattern: '0A4M' has a run of zero layers \(0A\)"):
        parse_pattern("0A4M")
    with pytest.raises(SpecError, match=r"^--primitives: unknown primitive shorthand\(s\) \['X'\]"):
        parse_pattern("AX", "--primitives")
