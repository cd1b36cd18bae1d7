"""Exports that train elsewhere: a Nemotron-H ``config.json`` for Hugging Face transformers and the
matching Megatron-LM hybrid flags, for layouts of attention (``A``), SwiGLU MLP (``M``) and Mamba-2 (``S``).

Nemotron-H (NVIDIA 2025) is the library model whose layer list is ours: one character per layer in
``hybrid_override_pattern``, ``*`` attention, ``M`` Mamba-2, ``-`` MLP, each layer a pre-norm residual
block, so our ``A``/``S``/``M`` map to ``*``/``M``/``-`` one to one. Widths map field by field
(``hidden_size`` = ``d_model``, ``intermediate_size`` = the MLP width, heads, ``head_dim``, the Mamba-2
state, heads, groups, conv width and expansion). Where the library model differs from our primitives,
``differences`` says so and the model card repeats it:

* its MLP is ``relu2`` (two matrices, squared ReLU), ours SwiGLU (three): at the same width each MLP
  layer has ``d_model * d_ffn`` parameters fewer there (Megatron-LM takes ``--swiglu``: no difference);
* its attention has no rotary embedding (position comes from the Mamba-2 layers); ours uses RoPE
  (Megatron-LM takes ``--position-embedding-type rope``);
* one ``intermediate_size`` for every MLP layer: a layout whose MLP widths differ (a size-matched last
  block) exports the most common width, and the parameter difference is stated;
* its LM head is never tied to the embedding (transformers 5.24 declares no tied weights for it), so a
  layout of ours with a tied head has ``vocab_size * d_model`` parameters more there.

Layouts with other primitives (Gated DeltaNet ``G``, GLA ``L``, sliding-window attention ``W``) have
no such library config: ``check_nemotron`` refuses them in one line naming the formats that take them.
"""

from __future__ import annotations

import collections

from composer.errors import UsageError
from composer.jsontypes import JSONObject

__all__ = ["NEMOTRON_CHARS", "check_nemotron", "nemotron_h_config", "megatron_args", "differences"]

NEMOTRON_CHARS = {"attention": "*", "mamba2": "M", "swiglu": "-"}


def check_nemotron(spec) -> None:
    other = sorted({layer.primitive for layer in spec.layers} - set(NEMOTRON_CHARS))
    if other:
        raise UsageError(f"--format nemotron-h: Nemotron-H has attention, Mamba-2 and MLP layers only; this layout "
                         f"also has {', '.join(other)}; export it with --format archspec (lossless) or hf")
    for prim in ("attention", "mamba2"):
        options = {layer.options for layer in spec.layers if layer.primitive == prim}
        if len(options) > 1:
            raise UsageError(f"--format nemotron-h: the {prim} layers have different options ({len(options)} "
                             "sets); Nemotron-H has one set for all; export with --format archspec")


def _mlp_widths(spec) -> list[int]:
    from primitives.base import get

    mlp = get("swiglu")
    return [mlp.width(spec.dims, mlp.check_options(dict(layer.options))) for layer in spec.layers
            if layer.primitive == "swiglu"]


def _mamba(spec) -> dict[str, int]:
    from primitives.base import get

    layer = next((l for l in spec.layers if l.primitive == "mamba2"), None)
    cls = get("mamba2")
    opts = cls.check_options(dict(layer.options) if layer else {})
    d_inner = opts["expand"] * spec.d_model
    p = opts["head_dim"] or spec.head_dim
    return {"ssm_state_size": opts["d_state"], "mamba_num_heads": d_inner // p, "mamba_head_dim": p,
            "n_groups": opts["n_groups"], "conv_kernel": opts["d_conv"], "expand": opts["expand"]}


def _pattern(spec) -> str:
    return "".join(NEMOTRON_CHARS[layer.primitive] for layer in spec.layers)


def nemotron_h_config(spec) -> JSONObject:
    """The transformers ``NemotronHConfig`` of ``spec`` as ``config.json`` (``AutoModelForCausalLM``)."""
    check_nemotron(spec)
    widths = _mlp_widths(spec)
    ffn = collections.Counter(widths).most_common(1)[0][0] if widths else spec.d_ffn
    return {"architectures": ["NemotronHForCausalLM"], "model_type": "nemotron_h",
            "vocab_size": spec.vocab_size, "hidden_size": spec.d_model, "num_hidden_layers": spec.n_layers,
            "hybrid_override_pattern": _pattern(spec),
            "num_attention_heads": spec.n_heads, "num_key_value_heads": spec.n_kv_heads, "head_dim": spec.head_dim,
            "max_position_embeddings": spec.max_seq_len, "attention_bias": False,
            "intermediate_size": ffn, "mlp_hidden_act": "relu2", "mlp_bias": False,
            **_mamba(spec), "use_conv_bias": True, "mamba_proj_bias": False, "chunk_size": 128,
            "layer_norm_epsilon": spec.norm_eps, "tie_word_embeddings": spec.tie_embeddings,
            "use_mamba_kernels": False, "residual_in_fp32": False, "torch_dtype": "float32"}


def differences(spec) -> dict[str, int | str]:
    """What the Nemotron-H model of ``nemotron_h_config(spec)`` has that ours has not, in parameters."""
    widths = _mlp_widths(spec)
    ffn = nemotron_h_config(spec)["intermediate_size"]
    # SwiGLU has 3 d f, relu2 2 d f; a layer at another width than the exported one counts its own.
    mlp = sum(3 * spec.d_model * w - 2 * spec.d_model * ffn for w in widths)
    head = spec.vocab_size * spec.d_model if spec.tie_embeddings else 0
    return {"params_ours_minus_theirs": mlp - head, "mlp_params_ours_minus_theirs": mlp,
            "untied_head_params_theirs": head, "mlp_layers": len(widths),
            "mlp_widths_differing": sum(1 for w in widths if w != ffn),
            "attention_rope": "ours: RoPE (theta {:g}); Nemotron-H: none".format(spec.rope_theta)}


def megatron_args(spec, seq_len: int | None = None) -> list[str]:
    """Megatron-LM ``pretrain_mamba.py`` flags for the same model (SwiGLU and RoPE kept, as ours)."""
    check_nemotron(spec)
    cfg = nemotron_h_config(spec)
    args = ["--is-hybrid-model", "--spec", "megatron.core.models.mamba.mamba_layer_specs", "mamba_stack_spec",
            "--hybrid-override-pattern", cfg["hybrid_override_pattern"], "--hybrid-attention-ratio", "0",
            "--hybrid-mlp-ratio", "0", "--num-layers", str(spec.n_layers), "--hidden-size", str(spec.d_model),
            "--ffn-hidden-size", str(cfg["intermediate_size"]), "--swiglu",
            "--num-attention-heads", str(spec.n_heads), "--kv-channels", str(spec.head_dim)]
    if spec.n_kv_heads != spec.n_heads:
        args += ["--group-query-attention", "--num-query-groups", str(spec.n_kv_heads)]
    args += ["--mamba-state-dim", str(cfg["ssm_state_size"]), "--mamba-head-dim", str(cfg["mamba_head_dim"]),
             "--mamba-num-groups", str(cfg["n_groups"]), "--mamba-num-heads", str(cfg["mamba_num_heads"]),
             "--position-embedding-type", "rope", "--rotary-base", f"{spec.rope_theta:g}",
             "--normalization", "RMSNorm", "--norm-epsilon", f"{spec.norm_eps:g}", "--disable-bias-linear",
             "--vocab-size", str(spec.vocab_size), "--seq-length", str(seq_len or spec.max_seq_len),
             "--max-position-embeddings", str(spec.max_seq_len)]
    if not spec.tie_embeddings:
        args.append("--untie-embeddings-and-output-weights")
    return args
