"""Score layouts with a proxy protocol at several seeds and judge it: seed-to-seed agreement and rank
agreement with the real-text ground truth of a fidelity study.

    python experiments/proxy_variants.py --protocol text --seeds 0,1 \\
        --layouts MMMMMM,AMMMMM,AAAAAA,AMAMAM,AMMAMM,AAMMMM,MMMMAA,MAMAMA,AAAMMM \\
        --truth runs/fidelity-small --out experiments/results/proxy_text.jsonl

Evaluations are appended to ``--out`` (JSONL, one ``composer evaluate --json``-like record per line)
and skipped when already there, so the script resumes. It then prints, for this protocol and for every
protocol found in ``--compare`` files: the median seed-to-seed Kendall tau among layouts with >= 2
attention layers, and Spearman / Kendall against the ground truth with bootstrap 95 % intervals.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def _evaluate(protocol: str, layouts: list[str], seeds: list[int], out: Path, steps_scale: float | None,
              tasks: tuple[str, ...] | None = None) -> None:
    from search.evaluators import EvaluatorConfig, normalize_result

    done = set()
    if out.exists():
        done = {(r["pattern"], r["seed"]) for r in map(json.loads, out.read_text().splitlines()) if r}
    for seed in seeds:
        evaluator = None
        for layout in layouts:
            if (layout, seed) in done:
                continue
            evaluator = evaluator or EvaluatorConfig(protocol=protocol, seed=seed, steps_scale=steps_scale,
                                                      tasks=tasks).build()
            e = normalize_result(evaluator(layout), evaluator.protocol)
            rec = {"pattern": layout, "seed": seed, "protocol": e.protocol, "score": e.score, "tasks": e.tasks,
                   "wall_s": e.wall_s, "tokens": e.tokens}
            # a per-layout rate grid (``text-lr``): which rate it chose and the dev losses it chose on
            rec.update({k: e.details[k] for k in ("lr", "lr_at_edge", "dev_loss") if k in (e.details or {})})
            with open(out, "a") as f:
                f.write(json.dumps(rec) + "\n")
            print(f"{e.protocol} {layout} seed {seed}: score {e.score:.4f} ({e.wall_s:.0f} s)", file=sys.stderr)


def _variants() -> dict:
    """Protocol variants judged here but not offered by the CLI, registered on demand by name."""
    import dataclasses

    from composer.mad.protocol import CAPACITY

    return {
        # the named scales tie the LM head to the embedding and draw both N(0, 0.02); the proxy does not
        "capacity-tied": dataclasses.replace(CAPACITY, name="capacity-tied", tie_embeddings=True, embed_std=0.02),
    }


def _register_variant(protocol: str) -> None:
    from composer.mad.protocol import PROTOCOLS

    variants = _variants()
    if protocol in variants and protocol not in PROTOCOLS:
        PROTOCOLS[protocol] = variants[protocol]


RECALL = ("in_context_recall", "noisy_in_context_recall", "fuzzy_in_context_recall")
OBJECTIVES = {
    # name -> per-task weights over the MAD tasks (missing: 0); "mean" is the default protocol's objective
    "mean": None,
    "no-recall": {"selective_copying": 1, "compression": 1, "memorization": 1},
    "memorization": {"memorization": 1},
    "memorization-x3": {"memorization": 3, "selective_copying": 1, "compression": 1, **dict.fromkeys(RECALL, 1)},
    "recall-only": dict.fromkeys(RECALL, 1),
}
"""Objective variants computed from stored MAD task values (no new training): the objective-repair
candidates of docs/search.md, judged like any protocol."""


def rescore(rows: list[dict], objective: str) -> list[dict]:
    """Rows with ``score`` recomputed from their ``tasks`` by the weights of ``objective``."""
    weights = OBJECTIVES[objective]
    if weights is None:
        return rows
    out = []
    for r in rows:
        tasks = r.get("tasks") or {}
        if not all(k in tasks for k in weights):
            continue
        score = sum(w * tasks[k] for k, w in weights.items()) / sum(weights.values())
        out.append({**r, "score": score, "protocol": f"{r.get('protocol')}:{objective}"})
    return out


def mix(a: list[dict], b: list[dict]) -> list[dict]:
    """The MAD+text mix: the mean of the two protocols' scores, each standardised over the layouts and
    seeds both have (a z-score, so neither scale dominates)."""
    import numpy as np

    ka = {(r["pattern"], int(r["seed"])): r["score"] for r in a}
    kb = {(r["pattern"], int(r["seed"])): r["score"] for r in b}
    both = sorted(set(ka) & set(kb))
    if len(both) < 3:
        return []
    za, zb = (np.array([k[x] for x in both]) for k in (ka, kb))
    z = (za - za.mean()) / za.std() + (zb - zb.mean()) / zb.std()
    return [{"pattern": p, "seed": s, "score": float(v), "protocol": "mix"} for (p, s), v in zip(both, z)]


def mix_protocol_rows(capacity: list[dict], text: list[dict]) -> list[dict]:
    """Rows of the ``mix`` protocol rebuilt from stored ``capacity`` and ``text`` evaluations of the same
    (layout, seed), through the protocol's own fixed combination (``search.evaluators.mix.combine``)."""
    from search.evaluators.mix import combine, mix_tasks

    kc = {(r["pattern"], int(r["seed"])): r for r in capacity}
    kt = {(r["pattern"], int(r["seed"])): r for r in text}
    out = []
    for key in sorted(set(kc) & set(kt)):
        c, t = kc[key], kt[key]
        out.append({"pattern": key[0], "seed": key[1], "protocol": "mix",
                    "score": combine({"capacity": c["score"], "text": t["score"]}),
                    "tasks": mix_tasks({"capacity": (c["score"], c.get("tasks", {})),
                                        "text": (t["score"], t.get("tasks", {}))}),
                    "wall_s": (c.get("wall_s") or 0.0) + (t.get("wall_s") or 0.0)})
    return out


def _judge(rows: list[dict], truth_dir: Path | None) -> dict:
    import numpy as np

    from search.fidelity.rank_agreement import kendall
    from search.fidelity.truth_report import build_summary
    from search.fidelity.truth_rows import ProxyScore, TruthRow
    from search.results.parquet import read_parquet

    by: dict[str, dict[int, float]] = {}
    for r in rows:
        by.setdefault(r["pattern"], {})[int(r["seed"])] = float(r["score"])
    seeds = sorted({s for v in by.values() for s in v})
    region = [p for p in by if p.count("A") >= 2]
    taus = [float(kendall([by[p][a] for p in region], [by[p][b] for p in region]))
            for i, a in enumerate(seeds) for b in seeds[i + 1:] if all(a in by[p] and b in by[p] for p in region)]
    out = {"layouts": len(by), "seeds": seeds, "seed_kendall_ge2A_median": float(np.median(taus)) if taus else None,
           "mean_wall_s": float(np.mean([r.get("wall_s") or np.nan for r in rows]))}
    if truth_dir is not None and (truth_dir / "fidelity.parquet").exists():
        truth = [TruthRow.from_dict(r) for r in read_parquet(truth_dir / "fidelity.parquet").to_dict("records")]
        proxy = [ProxyScore(layout=r["pattern"], seed=r["seed"], score=r["score"], protocol="x") for r in rows]
        s = build_summary(truth, proxy, layouts=list(by))
        out["truth"] = {k: {"spearman": c.spearman, "kendall": c.kendall} for k, c in s.correlation.items()}
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--protocol", required=True)
    p.add_argument("--layouts", required=True)
    p.add_argument("--seeds", default="0,1")
    p.add_argument("--steps-scale", type=float, default=None)
    p.add_argument("--tasks", default=None, help="MAD tasks to score (comma-separated; default all)")
    p.add_argument("--truth", default=None, help="a fidelity study folder (its fidelity.parquet)")
    p.add_argument("--out", required=True, help="JSONL of this protocol's evaluations (appended)")
    p.add_argument("--compare", default="", help="other JSONL files of evaluations to judge the same way")
    p.add_argument("--judge-only", action="store_true", help="judge what --out holds; evaluate nothing")
    p.add_argument("--objectives", default="", help="objective variants (OBJECTIVES) recomputed from the MAD "
                                                    "task values of the --compare files, each judged too")
    p.add_argument("--mix", action="store_true", help="also judge the mean of --out and the first --compare "
                                                     "file, standardised (a MAD+text mix)")
    p.add_argument("--mix-protocol", default="", help="CAPACITY.jsonl,TEXT.jsonl: judge the `mix` protocol "
                                                        "rebuilt from them (rows written to --out)")
    args = p.parse_args(argv)
    layouts = [x.strip() for x in args.layouts.split(",") if x.strip()]
    out = Path(args.out)
    if args.mix_protocol:
        cap, txt = ([json.loads(x) for x in Path(f).read_text().splitlines() if x.strip()]
                    for f in args.mix_protocol.split(","))
        from composer.atomic import write_text

        write_text(out, "".join(json.dumps(r) + "\n" for r in mix_protocol_rows(cap, txt)))
    elif not args.judge_only:
        _register_variant(args.protocol)
        tasks = tuple(args.tasks.split(",")) if args.tasks else None
        _evaluate(args.protocol, layouts, [int(s) for s in args.seeds.split(",")], out, args.steps_scale, tasks)
    truth = Path(args.truth) if args.truth else None
    files = [out] + [Path(c) for c in args.compare.split(",") if c]
    tables = {path: [r for r in map(json.loads, path.read_text().splitlines()) if r and r["pattern"] in layouts]
              for path in files}
    for path, rows in tables.items():
        print(json.dumps({"file": str(path), **_judge(rows, truth)}, indent=2))
        for name in [o for o in args.objectives.split(",") if o and path != out]:
            print(json.dumps({"file": str(path), "objective": name, **_judge(rescore(rows, name), truth)}, indent=2))
    if args.mix and len(files) > 1:
        print(json.dumps({"mix": [str(f) for f in files[:2]], **_judge(mix(tables[files[0]], tables[files[1]]),
                                                                        truth)}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
