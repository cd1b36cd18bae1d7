"""Export the best layouts of a run: as ``ArchSpec`` JSON, or as a Hugging Face style ``config.json``.

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

FORMATS = ("archspec", "hf")

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
        else:
            folder = out / stem
            folder.mkdir(exist_ok=True)
            path = folder / "config.json"
            _write(path, json.dumps(hf_config(spec), indent=2) + "\n")
        card = model_card(pattern, rank, spec, cost, record, run, ext.rule, (truth or {}).get(pattern))
        _write(path.with_name(f"{stem}.md") if fmt == "archspec" else path.with_name("README.md"), card)
        written.append(path)
    return written
