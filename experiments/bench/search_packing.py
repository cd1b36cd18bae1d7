"""``make search`` with and without packing (and with 1 or 2 workers): wall time of the whole search, side by
side in one run.

Runs ``composer search`` once per pack size (``--packs 1,4``: no packing, then packs of up to four
seeds of a layout) and, with ``--workers 1,2``, once per worker count under each, on the same settings,
each in its own fresh process and run folder, one after another, and records per run: wall seconds,
the load average before and after and the median 1-minute load sampled every 30 s while it ran (this
machine is shared), the number of evaluations, the winner, and the largest score difference from the
first run over the evaluations both made (same layout, seed and stage): packing and workers change the
wall time, never a score (a model-based sampler on a space larger than the budget may propose other
layouts with more workers).

    .venv/bin/python experiments/bench/search_packing.py [--packs 1,4] [--workers 0] [--protocols capacity,text]
        [--budget 200] [--scale 350M] [--cache user|cold|cold,warm] [-- extra composer search flags]

With ``--protocols`` every pack size runs under each protocol in turn (one protocol's searches, then
the next's), each protocol's first configuration the reference of its others. ``--cache cold,warm``
runs each configuration twice: on an empty JAX compilation cache (a user's first search) and again on
the cache that run filled (a rerun, a resumed search or the next search of the same space).

Writes ``experiments/bench/results/search_packing.json`` (``--out`` to change) after every run, so an
interrupted benchmark keeps what it measured. The number decides whether ``--pack`` defaults to on.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

RESULTS = Path(__file__).resolve().parent / "results" / "search_packing.json"
ROOT = Path(__file__).resolve().parents[2]


def _composer() -> list[str]:
    exe = Path(sys.executable).with_name("composer")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "cli.main"]


def _scores(run_dir: Path) -> dict:
    from compare_scores import scores

    from search.results.leaderboard import read_leaderboard

    return scores(read_leaderboard(run_dir))


def _margin(summary: dict) -> dict | None:
    """The winner's proxy margin over Llama on fresh seeds, as ``summary.json`` states it."""
    m = summary.get("winner_vs_llama")
    if not m:
        return None
    out = {k: m.get(k) for k in ("winner", "llama", "n_seeds", "mean", "lo", "hi", "significant", "claim_on",
                                 "verdict")}
    pooled = m.get("pooled") or {}
    out.update(pooled_lo=pooled.get("lo"), pooled_hi=pooled.get("hi"), pooled_df=pooled.get("df"))
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--packs", default="1,4", help="pack sizes, one search each (first: the reference)")
    p.add_argument("--workers", default="0",
                   help="worker counts (0: the device's default), every pack size under each; each protocol's "
                        "first (workers, pack) is the reference of its other searches")
    p.add_argument("--protocols", default=None,
                   help="comma-separated protocols, every pack size under each (default: the search's default)")
    p.add_argument("--budget", type=int, default=200)
    p.add_argument("--scale", default="350M")
    p.add_argument("--out", default=str(RESULTS))
    p.add_argument("--runs-dir", default=None, help="where the runs go (default: a temporary folder)")
    p.add_argument("--cache", default="user",
                   help="JAX compilation cache: user (the user's, as it stands), cold (an empty one per run) or "
                        "cold,warm (each configuration on an empty cache, then rerun on the one it filled)")
    p.add_argument("extra", nargs="*", help="more composer search flags (after --)")
    args = p.parse_args(argv)
    packs = [int(x) for x in args.packs.split(",")]
    workers = [int(x) for x in args.workers.split(",")]
    configs = [(w, k) for w in workers for k in packs]

    from _timing import machine, write_results

    runs_dir = Path(args.runs_dir or tempfile.mkdtemp(prefix="search-packing-")).resolve()
    payload = {"benchmark": "search_packing", "budget": args.budget, "scale": args.scale, "extra": args.extra,
               "machine": machine(), "runs": []}
    protocols = args.protocols.split(",") if args.protocols else [None]
    caches = args.cache.split(",")
    if caches not in (["user"], ["cold"], ["cold", "warm"]):
        p.error(f"--cache: one of user, cold, cold,warm; got {args.cache!r}")
    ref = None
    runs = [(pr, c, cache) for pr in protocols for c in configs for cache in caches]
    for protocol, (w, k), cache in runs:
        # each protocol's first configuration (on its first cache state) is its own reference
        ref = ref if ((w, k), cache) != (configs[0], caches[0]) else None
        name = (f"pack{k}" if protocol is None else f"{protocol}-pack{k}") + (f"-w{w}" if len(workers) > 1 else "")
        name += "" if cache == "user" else f"-{cache}"
        cmd = [*_composer(), "search", "--budget", str(args.budget), "--scale", args.scale, "--pack", str(k),
               "--workers", str(w), "--name", name, "--runs-dir", str(runs_dir), "--quiet", *args.extra]
        if protocol is not None:
            cmd += ["--protocol", protocol]
        env = dict(os.environ)
        if cache != "user":  # cold: an empty folder; warm: the one its cold run (just before) filled
            folder = runs_dir / "jax-cache" / name.removesuffix(f"-{cache}")
            if cache == "cold":
                shutil.rmtree(folder, ignore_errors=True)
            env["COMPOSER_JAX_CACHE"] = str(folder)
        load0 = os.getloadavg()
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        loads = []
        while proc.poll() is None:  # the 1-minute load every 30 s: what else ran beside this search
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                loads.append(os.getloadavg()[0])
        stderr = proc.stderr.read()
        wall = time.perf_counter() - t0
        entry = {"pack": k, "workers_flag": w, "protocol": protocol, "cache": cache, "wall_s": round(wall, 1),
                 "wall_min": round(wall / 60, 2), "rc": proc.returncode,
                 "load_before": [round(x, 2) for x in load0], "load_after": [round(x, 2) for x in os.getloadavg()],
                 "load_1min_median": round(sorted(loads)[len(loads) // 2], 2) if loads else None}
        if proc.returncode != 0:
            entry["stderr_tail"] = stderr[-2000:]
        else:
            summary = json.loads((runs_dir / name / "summary.json").read_text())
            scores = _scores(runs_dir / name)
            entry["evaluations"] = len(scores)
            entry["workers"] = (summary.get("settings") or {}).get("workers")
            entry["winner"] = (summary.get("proxy") or {}).get("pattern")
            entry["winner_vs_llama"] = _margin(summary)
            if ref is None:
                ref = (entry, scores)
            else:
                base, common = ref[0], set(ref[1]) & set(scores)
                entry["vs_workers_flag"], entry["vs_pack"], entry["vs_cache"] = (base["workers_flag"], base["pack"],
                                                                                  base["cache"])
                entry["common_evaluations"] = len(common)
                entry["max_abs_score_diff"] = max((abs(ref[1][c] - scores[c]) for c in common), default=None)
                entry["speedup"] = round(base["wall_s"] / wall, 3)
        payload["runs"].append(entry)
        print(json.dumps(entry), flush=True)
        write_results(args.out, payload)
    return 0 if all(r["rc"] == 0 for r in payload["runs"]) else 1


if __name__ == "__main__":
    sys.exit(main())
