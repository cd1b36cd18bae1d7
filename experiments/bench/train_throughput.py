"""Training throughput of Composer's train step against a pure-JAX and a PyTorch (CPU) reference.

All three train the same Llama-style model (tied embeddings, pre-RMSNorm, GQA attention with RoPE,
SwiGLU) with the same batch, sequence length and optimiser (global-norm clip 1.0 + AdamW on the
warmup-stable-decay schedule, decay on matrices only). Each implementation is timed in the same
process, interleaved repeat by repeat so that load drift hits all of them alike; we report the
median step time after warmup and the compile (JAX) or first-step (PyTorch) seconds apart.

    .venv/bin/pip install torch==2.13.0   # benchmark-only dependency
    .venv/bin/python experiments/bench/train_throughput.py [--quick]

Writes ``experiments/bench/results/train_throughput.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

# libgomp's busy-waiting worker threads (PyTorch's OpenMP) compete with XLA's CPU thread pool when
# both live in one process; on a 2-core machine that made PyTorch steps 7x slower. Passive waiting
# must be set before torch loads; it made PyTorch faster than running alone, so it favours PyTorch.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import jax  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))

from ref_models import jax_reference, torch_reference  # noqa: E402

from composer.optim import make_optimizer  # noqa: E402
from composer.presets import spec_from_pattern  # noqa: E402
from composer.steps import train_step_fn  # noqa: E402
from composer.train import TrainConfig, init_params, train  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "train_throughput.json"
# (name, scale, Llama blocks, batch, seq_len): 4 blocks = 8 Composer layers (A and M are separate layers).
SIZES = [("d128-4blocks", "tiny", 4, 8, 128), ("d256-8blocks", "small", 8, 4, 256)]


class _RandomTokens:
    """In-memory token source for the end-to-end ``train()`` measurement."""

    vocab_size = 256

    def batch(self, split, step, batch_size, seq_len, *, seed):
        rng = np.random.default_rng([seed, step])
        return rng.integers(0, 256, (batch_size, seq_len + 1), dtype=np.int32)


def _ours(spec, config, tokens):
    graphdef, params = init_params(spec, config)
    params = jax.device_put(params, jax.devices()[0])
    opt_state = jax.device_put(make_optimizer(config).init(params), jax.devices()[0])
    fn = train_step_fn(graphdef, config.optimizer_view())
    t0 = time.perf_counter()
    fn.lower(params, opt_state, tokens, np.int32(0)).compile()  # as composer.train does
    compile_s = time.perf_counter() - t0
    state = {"p": params, "o": opt_state, "i": 0}

    def step():
        state["p"], state["o"], m = fn(state["p"], state["o"], tokens, np.int32(state["i"]))
        state["i"] += 1
        return m["loss"]

    return step, compile_s, lambda loss: loss.block_until_ready()


def _time_interleaved(impls: dict, repeats: int, steps: int, warmup: int) -> dict[str, list[float]]:
    for step, _, sync in impls.values():
        for _ in range(warmup):
            sync(step())
    times = {name: [] for name in impls}
    for _ in range(repeats):
        for name, (step, _, sync) in impls.items():
            t0 = time.perf_counter()
            for _ in range(steps):
                out = step()
            sync(out)
            times[name].append((time.perf_counter() - t0) / steps)
    return times


def _end_to_end(spec, config) -> float:
    """Tokens/s of the full ``train()`` loop (numpy batches, metric syncs) on random tokens."""
    return train(spec, _RandomTokens(), config.replace(eval_batches=0)).tokens_per_second


def run_size(name, scale, blocks, batch, seq_len, *, repeats, steps, warmup):
    spec = spec_from_pattern("AM" * blocks, scale)
    config = TrainConfig(steps=1000, batch_size=batch, seq_len=seq_len, lr=1e-3, log_every=10)
    rng = np.random.default_rng(0)
    tokens_np = rng.integers(0, 256, (batch, seq_len + 1), dtype=np.int32)
    tokens = jax.device_put(tokens_np)
    impls = {"composer": _ours(spec, config, tokens),
             "pure_jax": jax_reference(spec, config, tokens),
             "pytorch_cpu": torch_reference(spec, config, tokens_np)}
    times = _time_interleaved(impls, repeats, steps, warmup)
    e2e = _end_to_end(spec, config.replace(steps=1 + repeats * steps))
    rows = []
    for impl, samples in times.items():
        med = statistics.median(samples)
        rows.append({"size": name, "impl": impl, "pattern": spec.pattern, "d_model": spec.d_model,
                     "n_layers": spec.n_layers, "batch": batch, "seq_len": seq_len,
                     "tokens_per_s": batch * seq_len / med, "step_ms_median": med * 1e3,
                     "step_ms_samples": [s * 1e3 for s in samples], "compile_or_first_step_s": impls[impl][1]})
    rows.append({"size": name, "impl": "composer_train_loop", "pattern": spec.pattern, "d_model": spec.d_model,
                 "n_layers": spec.n_layers, "batch": batch, "seq_len": seq_len, "tokens_per_s": e2e})
    return rows


def _machine() -> dict:
    import flax
    import torch

    return {"platform": platform.platform(), "processor": _cpu_name(), "cores": os.cpu_count(),
            "python": platform.python_version(), "jax": jax.__version__, "jaxlib_device": jax.devices()[0].device_kind,
            "flax": flax.__version__, "optax": optax.__version__, "torch": torch.__version__,
            "torch_threads": torch.get_num_threads(), "numpy": np.__version__,
            "load_average": os.getloadavg()}


def _cpu_name() -> str:
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def _print_table(rows) -> None:
    print(f"{'size':<14} {'impl':<20} {'tokens/s':>10} {'step ms':>9} {'compile s':>10} {'vs pure_jax':>12} "
          f"{'vs torch':>9}")
    by = {(r["size"], r["impl"]): r for r in rows}
    for r in rows:
        ref = by[(r["size"], "pure_jax")]["tokens_per_s"]
        pt = by[(r["size"], "pytorch_cpu")]["tokens_per_s"]
        step = f"{r['step_ms_median']:.1f}" if "step_ms_median" in r else "-"
        comp = f"{r['compile_or_first_step_s']:.2f}" if "compile_or_first_step_s" in r else "-"
        print(f"{r['size']:<14} {r['impl']:<20} {r['tokens_per_s']:>10,.0f} {step:>9} {comp:>10} "
              f"{r['tokens_per_s'] / ref:>11.2f}x {r['tokens_per_s'] / pt:>8.2f}x")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats (a smoke run)")
    parser.add_argument("--out", default=str(RESULTS))
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(os.cpu_count())  # JAX's CPU client also uses every core by default
    repeats, steps, warmup = (2, 2, 1) if args.quick else (7, 3, 2)
    rows = []
    for size in SIZES:
        rows += run_size(*size, repeats=repeats, steps=steps, warmup=warmup)
    _print_table(rows)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    record = {"benchmark": "train_throughput", "repeats": repeats, "steps_per_repeat": steps, "warmup_steps": warmup,
              "machine": _machine(), "rows": rows}
    out.write_text(json.dumps(record, indent=2) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
