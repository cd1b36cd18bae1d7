"""Query-block size of the CPU attention core, timed on the ``text`` proxy's training step.

``primitives.attention_core.attend_causal_blocks`` splits the causal score matrix into query blocks,
each against only the keys it can see. This times one packed training step of the ``text`` proxy
(the ``proxy`` widths, 16 sequences of 128 bytes, the optimiser of ``composer train``) under every
block size of ``--blocks`` for a few layouts and pack sizes. Rounds alternate the order of the block
sizes, so each sees the same machine load; each round times ``--steps`` steps after a warm-up step.

    .venv/bin/python experiments/bench/attention_block.py [--blocks 128,64,32] [--rounds 3]

Prints per (layout, pack, block) the median seconds per step and its ratio to the first block size
(the median of each round's own ratio), and writes ``experiments/bench/results/attention_block.json``.

``--scores PROTOCOL`` instead scores every layout at ``--seeds`` under that text protocol once per
block size (a search's evaluation at pack 1) and reports how far each score moves from the first
block size's: the block size changes the rounding of every step, and training carries it on.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results" / "attention_block.json"


@contextlib.contextmanager
def _query_block(block: int):
    """Steps traced inside use query blocks of ``block`` (``attention_core.QUERY_BLOCK``, read at trace time)."""
    import primitives.attention_core as core

    saved, core.QUERY_BLOCK = core.QUERY_BLOCK, block
    try:
        yield
    finally:
        core.QUERY_BLOCK = saved


def _step_for(spec, config, pack: int, block: int):
    """A fresh jitted packed step whose attention uses query blocks of ``block`` (traced anew)."""
    import jax
    import numpy as np

    from composer.packed_train import _packed_step, _stack
    from composer.train import init_params

    with _query_block(block):
        inits = [init_params(spec, config.replace(seed=s)) for s in range(pack)]
        graphdef, params = inits[0][0], _stack([p for _, p in inits])
        tx, vstep = _packed_step.__wrapped__(graphdef, config.optimizer_view())
        opt_state = jax.vmap(tx.init)(params)
        ratio = jax.numpy.ones((pack,), jax.numpy.float32)
        tokens = np.random.default_rng(0).integers(0, 256, (pack, config.batch_size, config.seq_len + 1),
                                                   dtype=np.int32)
        t0 = time.perf_counter()
        params, opt_state, m = vstep(params, opt_state, tokens, ratio)  # compiles (traced under ``block``)
        jax.block_until_ready(m)
        compile_s = time.perf_counter() - t0
    return compile_s, [vstep, params, opt_state, tokens, ratio]


def _scores(protocol: str, layouts: list[str], seeds: list[int], blocks: list[int]) -> list[dict]:
    """``protocol``'s score of every layout and seed under each block size, fresh programs for each."""
    import os

    os.environ["COMPOSER_JAX_CACHE"] = "off"  # every program compiled from its own trace
    import jax

    import composer.packed_train as packed
    from search.protocols import evaluator_config

    evaluator = evaluator_config(protocol, seed=0).build()
    rows = []
    for layout in layouts:
        for seed in seeds:
            got = {}
            for b in blocks:
                packed._packed_step.cache_clear()  # traced again under this block size
                packed._packed_eval.cache_clear()
                jax.clear_caches()
                with _query_block(b):
                    (ev,) = evaluator.evaluate_many(layout, [seed])
                got[b] = ev.score
            ref = got[blocks[0]]
            rows.append({"layout": layout, "seed": seed, "scores": {str(b): v for b, v in got.items()},
                         "max_abs_diff": max(abs(v - ref) for v in got.values())})
            print(f"{layout} seed {seed}: " + ", ".join(f"block {b} {v:.6f}" for b, v in got.items())
                  + f" (max |diff| {rows[-1]['max_abs_diff']:.2e})", file=sys.stderr)
    return rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--blocks", default="128,64,32")
    p.add_argument("--layouts", default="AMAMAM,MMMAAA,AAAAAA,MMMMMA")
    p.add_argument("--packs", default="1,4")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--scale", default="proxy", help="model widths (``proxy``: the text proxy's)")
    p.add_argument("--seq-len", type=int, default=None, help="tokens per sequence (default: the text proxy's)")
    p.add_argument("--scores", metavar="PROTOCOL", help="score layouts under this text protocol per block instead")
    p.add_argument("--seeds", default="0", help="with --scores: the seeds of every layout")
    p.add_argument("--out", type=Path, default=RESULTS)
    args = p.parse_args(argv)
    from _timing import machine

    from composer.atomic import write_text

    blocks = [int(b) for b in args.blocks.split(",")]
    if args.scores:
        rows = _scores(args.scores, args.layouts.split(","), [int(s) for s in args.seeds.split(",")], blocks)
        out = {"benchmark": "attention_block_scores", "protocol": args.scores, "blocks": blocks,
               "machine": machine(), "rows": rows}
        write_text(args.out, json.dumps(out, indent=2) + "\n")
        print(f"wrote {args.out}", file=sys.stderr)
        return 0
    import jax

    from composer.presets import spec_from_pattern
    from search.evaluators.text import TEXT_PROTOCOLS

    config = TEXT_PROTOCOLS["text"]().train
    if args.seq_len:
        config = config.replace(seq_len=args.seq_len)
    rows = []
    for layout in args.layouts.split(","):
        spec = spec_from_pattern(layout, args.scale)
        for pack in (int(k) for k in args.packs.split(",")):
            compiled = {b: _step_for(spec, config, pack, b) for b in blocks}
            steps = {b: c[1] for b, c in compiled.items()}
            times: dict[int, list[float]] = {b: [] for b in blocks}
            for r in range(args.rounds):
                for b in (blocks if r % 2 == 0 else blocks[::-1]):
                    vstep, params, opt_state, tokens, ratio = steps[b]
                    t0 = time.perf_counter()
                    for _ in range(args.steps):
                        params, opt_state, m = vstep(params, opt_state, tokens, ratio)
                    jax.block_until_ready(m)
                    times[b].append((time.perf_counter() - t0) / args.steps)
                    steps[b] = (vstep, params, opt_state, tokens, ratio)
            for b in blocks:
                row = {"layout": layout, "pack": pack, "block": b, "compile_s": compiled[b][0],
                       "median_s_per_step": statistics.median(times[b]),
                       "s_per_step": times[b],
                       "paired_ratio_median": statistics.median(x / y for x, y in zip(times[b], times[blocks[0]]))}
                rows.append(row)
                print(f"{layout} pack {pack} block {b:4d}: {1e3 * row['median_s_per_step']:7.1f} ms/step "
                      f"({row['paired_ratio_median']:.3f}x block {blocks[0]}), compile {row['compile_s']:.1f} s",
                      file=sys.stderr)
    out = {"benchmark": "attention_block", "seq_len": config.seq_len, "batch_size": config.batch_size,
           "scale": args.scale, "rounds": args.rounds, "steps": args.steps, "machine": machine(), "rows": rows}
    write_text(args.out, json.dumps(out, indent=2) + "\n")
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).parent))
    raise SystemExit(main())
