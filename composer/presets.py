"""Named scales (widths) and named layouts.

Target scales follow the Llama-3.2 width table of docs/method.md §2.4 (100M-3B from arXiv 2510.04800;
8B is the Llama-3.1-8B shape). Proxy scales are the tiny widths used during search.
"""

from __future__ import annotations

import dataclasses

from composer.errors import lookup
from composer.spec import ArchSpec, LayerSpec, SpecError, parse_pattern

__all__ = ["Scale", "SCALES", "LAYOUTS", "get_scale", "layout", "spec_from_pattern", "llama_spec"]


@dataclasses.dataclass(frozen=True)
class Scale:
    """Widths of a named scale plus the depth of its Llama baseline (in ``AM`` blocks)."""

    name: str
    d_model: int
    d_ffn: int
    n_heads: int
    n_kv_heads: int
    head_dim: int
    llama_blocks: int
    vocab_size: int = 128_256
    max_seq_len: int = 2048
    rope_theta: float = 500_000.0
    is_proxy: bool = False


SCALES: dict[str, Scale] = {
    s.name: s
    for s in [
        # Proxy widths: d=64 with 16-wide heads learns MAD recall reliably on CPU (docs/mad_tasks.md §11.2).
        Scale("proxy", 64, 176, 4, 4, 16, 3, vocab_size=256, max_seq_len=256, rope_theta=10_000.0, is_proxy=True),
        Scale("tiny", 128, 352, 8, 4, 16, 4, vocab_size=256, max_seq_len=512, rope_theta=10_000.0, is_proxy=True),
        Scale("small", 256, 704, 8, 4, 32, 6, vocab_size=256, max_seq_len=1024, rope_theta=10_000.0, is_proxy=True),
        Scale("100M", 1024, 3072, 16, 4, 64, 8),
        Scale("350M", 1536, 4096, 24, 8, 64, 14),
        Scale("1B", 2048, 8192, 32, 8, 64, 16),
        Scale("3B", 3072, 8192, 32, 8, 96, 28),
        Scale("8B", 4096, 14336, 32, 8, 128, 32),
    ]
}


def get_scale(name: str) -> Scale:
    return lookup(SCALES, name, field="scale", what="scale", error=SpecError)


def _sandwich(n_blocks: int, k: int | None = None) -> str:
    """Press et al. 2020: ``A^k (AM)^(n-k) M^k``; same A:M ratio as Llama, attention at the bottom."""
    k = n_blocks // 2 if k is None else k
    return "A" * k + "AM" * (n_blocks - k) + "M" * k


def _repeat(unit: str, n_layers: int) -> str:
    return (unit * (n_layers // len(unit) + 1))[:n_layers]


# Named layouts, each a function of the number of layers (Llama-style blocks are two layers).
LAYOUTS = {
    "llama": lambda n: _repeat("AM", n),
    "sandwich": lambda n: _sandwich(n // 2) + ("M" if n % 2 else ""),
    "striped_1_2": lambda n: _repeat("AMM", n),
    "striped_1_4": lambda n: _repeat("AMMMM", n),
    "striped_1_8": lambda n: _repeat("AMMMMMMMM", n),
    # Composer's discovered layouts (docs/method.md §3); fixed depth, repeated if a longer depth is asked.
    "composite_6": lambda n: _repeat("AAMMMM", n),
    "composite_16": lambda n: _repeat("AAMMMMMAAMMMAMMM", n),
    # Hybrid families (docs/method.md §4). Each mixer is followed by an MLP layer, as in the originals;
    # MoE MLPs are plain SwiGLU here, and recurrences we do not ship are replaced by the nearest
    # registered primitive (named below).
    # Jamba (Lieber et al. 2024): 1 attention : 7 Mamba mixers, attention mid-block.
    "jamba": lambda n: _repeat("SMSMSMSMAMSMSMSM", n),
    # Qwen3-Next: 3 Gated DeltaNet : 1 gated attention.
    "qwen3_next": lambda n: _repeat("GMGMGMAM", n),
    # Griffin (De et al. 2024): 2 recurrent (RG-LRU; Mamba-2 here) : 1 local attention.
    "griffin": lambda n: _repeat("SMSMWM", n),
    # Samba (Ren et al. 2024): Mamba, MLP, sliding-window attention, MLP.
    "samba": lambda n: _repeat("SMWM", n),
    # MiniMax-01: 7 linear (lightning attention; GLA here) : 1 softmax attention.
    "minimax": lambda n: _repeat("LMLMLMLMLMLMLMAM", n),
    # Nemotron-H (NVIDIA 2025): Mamba-2 with about 8 % attention layers (1 in 12 here).
    "nemotron_h": lambda n: _repeat("SMSMSMSMSMAM", n),
}


def layout(name: str, n_layers: int) -> str:
    """Pattern of the named layout at ``n_layers`` layers."""
    if name not in LAYOUTS:
        raise SpecError(f"layout: unknown layout {name!r}; valid layouts: {', '.join(LAYOUTS)}")
    if n_layers < 1:
        raise SpecError(f"n_layers: must be >= 1, got {n_layers}")
    return LAYOUTS[name](n_layers)


def spec_from_pattern(pattern: str, scale: str | Scale, *, layer_options: dict[str, dict] | None = None,
                      **overrides) -> ArchSpec:
    """Build an ``ArchSpec`` with ``scale``'s widths and ``pattern`` as given.

    ``layer_options`` maps a shorthand to the options of every layer of that primitive
    (e.g. ``{"W": {"window": 128}}``); ``overrides`` replace spec fields (e.g. ``vocab_size``).
    """
    sc = get_scale(scale) if isinstance(scale, str) else scale
    layer_options = layer_options or {}
    layers = tuple(LayerSpec(ch, tuple(layer_options.get(ch, {}).items())) for ch in parse_pattern(pattern))
    fields = dict(d_model=sc.d_model, n_heads=sc.n_heads, n_kv_heads=sc.n_kv_heads, head_dim=sc.head_dim,
                  d_ffn=sc.d_ffn, vocab_size=sc.vocab_size, max_seq_len=sc.max_seq_len, rope_theta=sc.rope_theta)
    fields.update(overrides)
    return ArchSpec(layers=layers, **fields)


def llama_spec(scale: str | Scale, **overrides) -> ArchSpec:
    """The Llama baseline at ``scale``: ``AM`` repeated ``llama_blocks`` times."""
    sc = get_scale(scale) if isinstance(scale, str) else scale
    return spec_from_pattern(layout("llama", 2 * sc.llama_blocks), sc, **overrides)
