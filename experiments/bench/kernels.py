"""Kernel benchmark: tokens/s of every op path, forward and forward+backward, at T = 256/1024/4096.

Runs without Optuna or Ray (it is also run on the lent GPU machine). On CPU the Pallas kernels run
in interpret mode, which measures nothing useful about the kernel, so they are only timed at the
shortest length there (``--pallas-on-cpu`` forces all lengths).

    python experiments/bench/kernels.py [--lengths 256,1024,4096] [--ops ssd,gla,delta] [--out PATH]
"""

from __future__ import annotations

import argparse
import os
import sys

import jax
import jax.numpy as jnp

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _timing import machine, time_jitted, write_results  # noqa: E402

from primitives.ops.delta import gated_delta  # noqa: E402
from primitives.ops.gla import gla  # noqa: E402
from primitives.ops.ssd import ssd  # noqa: E402

B, H, DK, DV = 2, 4, 64, 64


def _inputs(op: str, t: int, dtype):
    ks = jax.random.split(jax.random.key(0), 6)
    n = lambda k, s: jax.random.normal(k, s, jnp.float32)
    if op == "ssd":
        x = n(ks[0], (B, t, H, DV)).astype(dtype)
        dt = jax.nn.softplus(n(ks[1], (B, t, H)) - 3.0)
        a = -jnp.exp(jax.random.uniform(ks[2], (H,), minval=0.0, maxval=2.7))
        bm, cm = n(ks[3], (B, t, H, DK)).astype(dtype), n(ks[4], (B, t, H, DK)).astype(dtype)
        return (x, dt, a, bm, cm)
    q, k = n(ks[0], (B, t, H, DK)), n(ks[1], (B, t, H, DK))
    v = n(ks[2], (B, t, H, DV)).astype(dtype)
    if op == "gla":
        log_g = jax.nn.log_sigmoid(n(ks[3], (B, t, H, DK)) + 3.0) / 16.0
        return (q.astype(dtype), k.astype(dtype), v, log_g)
    unit = lambda x: x / jnp.linalg.norm(x, axis=-1, keepdims=True)
    beta = jax.nn.sigmoid(n(ks[3], (B, t, H)))
    g = -jax.nn.softplus(n(ks[4], (B, t, H)) - 3.0)
    return (unit(q).astype(dtype), unit(k).astype(dtype), v, beta, g)


OPS = {"ssd": ssd, "gla": gla, "delta": gated_delta}


def _fns(op: str, impl: str):
    f = lambda *a: OPS[op](*a, impl=impl, chunk_size=64)
    fwd = jax.jit(lambda *a: f(*a)[0])

    def loss(*a):
        y, s = f(*a)
        return jnp.sum(y.astype(jnp.float32) ** 2) + jnp.sum(s)

    bwd = jax.jit(jax.grad(loss, argnums=tuple(range(len(_inputs(op, 1, jnp.float32))))))
    return fwd, bwd


def run(lengths, impls, pallas_on_cpu: bool, dtype, ops=tuple(OPS)) -> list[dict]:
    rows = []
    cpu = jax.default_backend() == "cpu"
    for op in ops:
        for t in lengths:
            args = _inputs(op, t, dtype)
            for impl in impls:
                if impl == "pallas" and cpu and not pallas_on_cpu and t != min(lengths):
                    continue
                fwd, bwd = _fns(op, impl)
                for mode, fn in (("fwd", fwd), ("fwd+bwd", bwd)):
                    r = time_jitted(fn, *args, repeats=5, min_time=20.0)
                    row = {"op": op, "impl": impl, "T": t, "mode": mode, "dtype": jnp.dtype(dtype).name,
                           "tokens_per_s": B * t / r["median_s"], **r}
                    rows.append(row)
                    print(f"{op:6s} {impl:9s} T={t:5d} {mode:8s} {row['tokens_per_s']:12.0f} tok/s  "
                          f"median {r['median_s'] * 1e3:9.2f} ms  compile {r['compile_s']:6.2f} s", flush=True)
    return rows


def speedups(rows: list[dict], t: int) -> dict:
    """chunked/reference and pallas/chunked throughput ratios at length ``t``."""
    out = {}
    for op in dict.fromkeys(r["op"] for r in rows):  # the ops that ran (see --ops), in order
        for mode in ("fwd", "fwd+bwd"):
            get = lambda impl, key=(op, t, mode): next(
                (r["tokens_per_s"] for r in rows if (r["op"], r["T"], r["mode"]) == key and r["impl"] == impl), None)
            ref, ch, pl = get("reference"), get("chunked"), get("pallas")
            out[f"{op}/{mode}"] = {"chunked_over_reference": ch / ref if ref and ch else None,
                                   "pallas_over_chunked": pl / ch if pl and ch else None}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--lengths", default="256,1024,4096")
    ap.add_argument("--impls", default="reference,chunked,pallas")
    ap.add_argument("--ops", default=",".join(OPS), help="comma-separated subset of " + ",".join(OPS))
    ap.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    ap.add_argument("--pallas-on-cpu", action="store_true")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    lengths = [int(x) for x in args.lengths.split(",")]
    ops = args.ops.split(",")
    unknown = sorted(set(ops) - set(OPS))
    if unknown:
        ap.error(f"--ops: unknown op(s) {unknown}; choose from {list(OPS)}")
    rows = run(lengths, args.impls.split(","), args.pallas_on_cpu, jnp.dtype(args.dtype), ops)
    ratios = speedups(rows, max(lengths))
    for k, v in ratios.items():
        print(f"T={max(lengths)} {k:14s} chunked/reference {v['chunked_over_reference'] or float('nan'):7.2f}x   "
              f"pallas/chunked {v['pallas_over_chunked'] or float('nan'):7.2f}x")
    out = args.out or os.path.join(os.path.dirname(__file__), "results", f"kernels_{jax.default_backend()}.json")
    write_results(out, {"machine": machine(), "shape": {"batch": B, "heads": H, "dk": DK, "dv": DV},
                        "rows": rows, f"ratios_T{max(lengths)}": ratios})
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
