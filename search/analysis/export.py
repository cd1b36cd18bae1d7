"""Export the best layouts of a run: as ``ArchSpec`` JSON (lossless), as a Hugging Face style
``config.json``, or as a Nemotron-H model that transformers and Megatron-LM train
(``search.analysis.export_nemotron``: ``config.json``, ``megatron_args.sh`` and a Hub model card).

The HF form follows recent hybrid configs: the usual width fields plus ``layer_types``, one entry per
layer naming its primitive (``full_attention``, ``sliding_attention``, ``mlp``, ``mamba2``,
``gated_deltanet``, ``gla``), with ``composer_spec`` holding the full ``ArchSpec`` so nothing is lost.
Each export comes with a short Markdown model card (layout, parameters, FLOPs per token, KV cache,
proxy score with its standard error and seeds, and the real-text validation loss when known).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from composer.errors import UsageError
from composer.jsontypes import JSONObject
from search.analysis.tables import Run

__all__ = ["FORMATS", "LAYER_TYPES", "export_run", "hf_config", "model_card"]

FORMATS = ("archspec", "hf", "nemotron-h")

LAYER_TYPES = {"attention": "full_attention", "sliding_window_attention": "sliding_attention", "swiglu": "mlp",
               "mamba2": "mamba2", "gated_deltanet": "gated_deltanet", "gla": "gla"}


def _write(path: Path, text: str) -> None:
    from composer.atomic import write_text

    write_text(path, text)


def hf_config(spec) -> JSONObject:
    """A ``config.json`` in the style of recent hybrid models, with the ``ArchSpec`` embedded."""
    window = next((dict(layer.options).get("window") for layer in spec.layers
                   if layer.primitive == "sliding_window_attention"), None)
    return {"architectures": ["ComposerHybridForCausalLM"], "model_type": "composer_hybrid",
            "hidden_size": spec.d_model, "intermediate_size": spec.d_ffn, "num_hidden_layers": spec.n_layers,
            "num_attention_heads": spec.n_heads, "num_key_value_heads": spec.n_kv_heads, "head_dim": spec.head_dim,
            "vocab_size": spec.vocab_size, "max_position_embeddings": spec.max_seq_len,
            "rope_theta": spec.rope_theta, "rms_norm_eps": spec.norm_eps, "tie_word_embeddings": spec.tie_embeddings,
            "sliding_window": window,
            "layer_types": [LAYER_TYPES.get(layer.primitive, layer.primitive) for layer in spec.layers],
            "composer_spec": spec.to_dict()}


def _fmt(x, spec="{:.4f}") -> str:
    return "n/a" if x is None or (isinstance(x, float) and not math.isfinite(x)) else spec.format(x)


def model_card(pattern: str, rank: int, spec, cost, record: dict[str, Any], run: Run, rule: str,
               fidelity: dict[str, float] | None) -> str:
    from composer.spec import arch_id, run_length

    lines = [f"# {arch_id(spec)}: rank {rank} of run `{run.name}`", "",
             f"- Searched layout: `{pattern}` ({run_length(pattern)}), extrapolated by `{rule}` to "
             f"`{spec.pattern}` ({spec.n_layers} layers, {run_length(spec.pattern)})",
             f"- Parameters: {cost.params:,} ({cost.non_embedding_params:,} non-embedding)",
             f"- FLOPs per token (forward, at {cost.seq_len} tokens): {cost.flops_per_token:,}",
             f"- KV cache / state per sequence ({cost.seq_len} tokens, {cost.cache_dtype}): "
             f"{cost.kv_cache_bytes_per_sequence:,} bytes",
             f"- Proxy score ({record.get('protocol')}): {_fmt(record.get('score_mean'))} ± "
             f"{_fmt(record.get('score_se'))} (standard error over {record.get('n_seeds')} seed(s))"]
    if fidelity:
        lines.append(f"- Real-text validation loss (composer fidelity): {_fmt(fidelity['mean'])} nats/byte over "
                     f"{fidelity['n']} seed(s)")
    else:
        lines.append("- Real-text validation loss: not measured (run `composer fidelity`)")
    lines += ["", "A proxy score ranks layouts on tiny models; it is not evidence of quality at this size on its "
              "own. Compare candidates with `composer fidelity` before training one at scale.", ""]
    return "\n".join(lines)


def export_run(run: Run, top: int, out: Path, *, scale: str | None = None, fmt: str = "archspec",
               rule: str | None = None) -> list[Path]:
    """Write the ``top`` best layouts (by mean score) to ``out``; return the written spec/config paths."""
    from composer.spec import arch_id
    from scaling.counting import cost_report
    from scaling.extrapolate import extrapolate

    if fmt not in FORMATS:
        raise UsageError(f"--format: unknown format {fmt!r}; valid: {', '.join(FORMATS)}")
    if top < 1:
        raise UsageError(f"--top: must be >= 1, got {top}")
    if top > len(run.layouts):
        raise UsageError(f"--top {top}: run {run.name!r} has {len(run.layouts)} scored layouts; use --top "
                         f"{len(run.layouts)} or less")
    settings = run.summary.get("settings") or {}
    scale = scale or settings.get("scale") or "350M"
    rule = rule or settings.get("rule") or "auto"
    truth = None
    if run.fidelity is not None and len(run.fidelity):
        ok = run.fidelity[run.fidelity["status"] == "ok"]
        truth = {k: {"mean": float(g["val_loss"].mean()), "n": len(g)} for k, g in ok.groupby("layout")}
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for rank, record in enumerate(run.layouts.head(top).to_dict("records"), 1):
        pattern = record["pattern"]
        ext = extrapolate(pattern, scale, rule)
        spec, cost = ext.spec, cost_report(ext.spec)
        stem = f"{rank:02d}-{arch_id(spec)}"
        if fmt == "archspec":
            path = out / f"{stem}.json"
            _write(path, spec.to_json() + "\n")
        elif fmt == "nemotron-h":
            path = _export_nemotron(out / stem, spec, model_card(pattern, rank, spec, cost, record, run, ext.rule,
                                                                 (truth or {}).get(pattern)))
            written.append(path)
            continue
        else:
            folder = out / stem
            folder.mkdir(exist_ok=True)
            path = folder / "config.json"
            _write(path, json.dumps(hf_config(spec), indent=2) + "\n")
        card = model_card(pattern, rank, spec, cost, record, run, ext.rule, (truth or {}).get(pattern))
        _write(path.with_name(f"{stem}.md") if fmt == "archspec" else path.with_name("README.md"), card)
        written.append(path)
    return written


def _export_nemotron(folder: Path, spec, card: str) -> Path:
    """``config.json`` (transformers' Nemotron-H), ``megatron_args.sh`` and ``README.md`` (a Hub model card
    through ``huggingface_hub.ModelCard``) in ``folder``; the ArchSpec rides along as ``archspec.json``."""
    import shlex

    from search.analysis.export_nemotron import check_nemotron, differences, megatron_args, nemotron_h_config

    check_nemotron(spec)
    try:
        from huggingface_hub import ModelCard, ModelCardData
    except ImportError:
        raise UsageError("--format nemotron-h writes a Hub model card with huggingface_hub; install the extra: "
                         "pip install 'composer-hybrid[hf]'") from None
    folder.mkdir(parents=True, exist_ok=True)
    config = nemotron_h_config(spec)
    _write(folder / "config.json", json.dumps(config, indent=2) + "\n")
    _write(folder / "archspec.json", spec.to_json() + "\n")
    flags = megatron_args(spec)
    _write(folder / "megatron_args.sh", "# Megatron-LM pretrain_mamba.py flags for this layout (SwiGLU, RoPE)\n"
           "MODEL_ARGS=(\n" + "".join(f"  {shlex.quote(a)}\n" for a in flags) + ")\n")
    diff = differences(spec)
    notes = ["", "## Exported as Nemotron-H", "",
             f"`config.json` loads with `transformers.AutoModelForCausalLM.from_config` "
             f"(`hybrid_override_pattern` `{config['hybrid_override_pattern']}`: `*` attention, `M` Mamba-2, "
             "`-` MLP). `megatron_args.sh` holds the Megatron-LM flags of the same model; `archspec.json` is the "
             "lossless Composer spec. Where the library model differs from the searched one:", "",
             f"- MLP: relu2 with two matrices there, SwiGLU with three here ({diff['mlp_layers']} MLP layers, "
             f"{diff['mlp_params_ours_minus_theirs']:,} parameters fewer there; Megatron-LM's `--swiglu` keeps "
             "ours)" + (f"; {diff['mlp_widths_differing']} MLP layer(s) of another width exported at "
                        f"{config['intermediate_size']}" if diff['mlp_widths_differing'] else ""),
             f"- attention: {diff['attention_rope']} (Megatron-LM keeps RoPE)",
             f"- LM head: never tied there ({diff['untied_head_params_theirs']:,} parameters more)"
             if diff["untied_head_params_theirs"] else "- LM head: untied in both",
             f"- in all: {diff['params_ours_minus_theirs']:+,} parameters ours minus theirs", ""]
    data = ModelCardData(library_name="transformers", pipeline_tag="text-generation",
                         tags=["composer", "hybrid", "nemotron_h", "mamba2", "architecture-search"])
    ModelCard.from_template(data, template_str="---\n{{ card_data }}\n---\n\n" + card + "\n".join(notes)) \
        .save(str(folder / "README.md"))
    return folder / "config.json"
