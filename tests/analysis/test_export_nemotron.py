"""Exports that load elsewhere: a Nemotron-H config builds in transformers on CPU, runs a forward pass
and has our parameter count up to the documented differences; Megatron-LM flags beside it; a Hub
model card; layouts Nemotron-H cannot hold are refused in one line."""

import json

import pytest

from composer.errors import UsageError
from composer.presets import spec_from_pattern
from scaling.counting import total_params
from search.analysis.export_nemotron import differences, megatron_args, nemotron_h_config

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")


@pytest.mark.parametrize("pattern, tied", [("AMSMAMSM", True), ("SMSMAM", False), ("AMAM", True)])
def test_a_tiny_nemotron_h_export_loads_runs_and_counts_like_ours(pattern, tied):
    spec = spec_from_pattern(pattern, "proxy").replace(tie_embeddings=tied)
    cfg = nemotron_h_config(spec)
    assert cfg["hybrid_override_pattern"] == pattern.replace("A", "*").replace("M", "-").replace("S", "M")
    model = transformers.AutoModelForCausalLM.from_config(transformers.AutoConfig.for_model(**cfg))
    assert type(model).__name__ == "NemotronHForCausalLM"
    logits = model(torch.randint(0, spec.vocab_size, (2, 12))).logits
    assert tuple(logits.shape) == (2, 12, spec.vocab_size) and bool(torch.isfinite(logits).all())
    theirs = sum(p.numel() for p in model.parameters())
    diff = differences(spec)
    assert total_params(spec) - theirs == diff["params_ours_minus_theirs"]
    assert diff["mlp_params_ours_minus_theirs"] == pattern.count("M") * spec.d_model * spec.d_ffn


def test_megatron_flags_name_the_same_model():
    spec = spec_from_pattern("SMSMAM", "proxy")
    args = megatron_args(spec)
    flag = {a: args[i + 1] for i, a in enumerate(args[:-1]) if a.startswith("--")}
    assert flag["--hybrid-override-pattern"] == "M-M-*-" and flag["--num-layers"] == "6"
    assert flag["--hidden-size"] == str(spec.d_model) and flag["--ffn-hidden-size"] == str(spec.d_ffn)
    assert "--swiglu" in args and flag["--position-embedding-type"] == "rope"


@pytest.mark.parametrize("pattern", ["AGMG", "WMAM", "LMLM"])
def test_layouts_nemotron_h_cannot_hold_are_refused_in_one_line(pattern):
    with pytest.raises(UsageError, match=r"^--format nemotron-h: Nemotron-H has attention, Mamba-2 and MLP layers "
                                         r"only; .*--format archspec \(lossless\) or hf$"):
        nemotron_h_config(spec_from_pattern(pattern, "proxy"))


def test_the_run_export_writes_config_flags_and_a_hub_card(tmp_path, monkeypatch):
    from huggingface_hub import ModelCard

    from cli.main import main

    monkeypatch.chdir(tmp_path)
    assert main(["search", "--evaluator", "fake", "--quiet", "--budget", "4", "--depth", "4", "--primitives",
                 "A,M,S", "--final-seeds", "0", "--name", "r"]) == 0
    assert main(["export", "r", "--format", "nemotron-h", "--scale", "350M", "--top", "2", "--out", "e"]) == 0
    for folder in sorted((tmp_path / "e").iterdir()):
        cfg = json.loads((folder / "config.json").read_text())
        transformers.AutoConfig.for_model(**cfg)  # a valid NemotronHConfig
        spec = json.loads((folder / "archspec.json").read_text())
        assert cfg["hidden_size"] == spec["d_model"] and len(cfg["hybrid_override_pattern"]) == len(spec["layers"])
        assert "--hybrid-override-pattern" in (folder / "megatron_args.sh").read_text()
        card = ModelCard.load(folder / "README.md")
        assert card.data.library_name == "transformers" and "nemotron_h" in card.data.tags
        assert "Exported as Nemotron-H" in card.text and "parameters ours minus theirs" in card.text
