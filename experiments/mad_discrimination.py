"""Does the MAD proxy separate layouts, and is its ranking stable across seeds?

Evaluates a panel of layouts at several seeds under one protocol, appending one JSON row per
(layout, seed) to a JSONL file (resumable: rows already there are skipped), then writes a summary
JSON and a markdown table: per-task accuracies, Kendall tau between the seed rankings (final
accuracy vs. area under the test-accuracy curve for the recall tasks), and the in-context-recall gap
between layouts with and without attention.

    python experiments/mad_discrimination.py                       # default panel, seeds 0-2, cpu
    python experiments/mad_discrimination.py --panel AAMMMM,SSMMMM --seeds 0,1,2
    python experiments/mad_discrimination.py --report-only
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

PANEL = ("MMMMMM", "AMMMMM", "AAAAAA", "AMAMAM", "AMMAMM", "AAMMMM", "MMMMAA", "MAMAMA", "AAAMMM")
RESULTS = Path(__file__).resolve().parent / "results"
RECALL = ("in_context_recall", "noisy_in_context_recall", "fuzzy_in_context_recall")


def _args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--panel", default=",".join(PANEL), help="comma-separated layouts (default: the 9 A/M layouts)")
    p.add_argument("--seeds", default="0,1,2", help="comma-separated seeds")
    p.add_argument("--protocol", default="cpu")
    p.add_argument("--tasks", default=None, help="comma-separated tasks (default: all)")
    p.add_argument("--name", default="mad_discrimination", help="stem of the result files")
    p.add_argument("--report-only", action="store_true", help="only summarise the rows already stored")
    return p.parse_args(argv)


def _load(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _run(args, path: Path, panel: list[str], seeds: list[int]) -> None:
    from composer.mad.evaluate import Evaluator
    from composer.spec import parse_pattern

    done = {(r["pattern"], r["seed"], r["protocol"]) for r in _load(path)}
    evaluator = Evaluator(args.protocol)
    todo = [(s, parse_pattern(p)) for s, p in itertools.product(seeds, panel)]
    todo = [(s, p) for s, p in todo if (p, s, evaluator.protocol.name) not in done]
    print(f"{len(todo)} evaluations to run ({len(done)} stored)", flush=True)
    for seed, pattern in todo:
        load = os.getloadavg()[0]
        result = evaluator.evaluate(pattern, seed=seed, tasks=args.tasks)
        row = {**result.to_dict(), "load_avg_1m_before": load, "load_avg_1m_after": os.getloadavg()[0],
               "host": platform.node(), "cpus": os.cpu_count(), "time": time.strftime("%Y-%m-%dT%H:%M:%S")}
        with path.open("a") as f:
            f.write(json.dumps(row) + "\n")
        print(f"{pattern} seed {seed}: score {result.score:.3f} "
              f"({', '.join(f'{k[:6]} {v:.2f}' for k, v in result.tasks.items())}) "
              f"wall {result.wall_s:.0f}s compile {result.compile_s:.0f}s", flush=True)


def kendall_tau(a, b) -> float:
    """Kendall tau-b between two score vectors (ties in either count as neither concordant nor not)."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    i, j = np.triu_indices(len(a), k=1)
    da, db = np.sign(a[i] - a[j]), np.sign(b[i] - b[j])
    n0 = len(i)
    denom = np.sqrt((n0 - np.sum(da == 0)) * (n0 - np.sum(db == 0)))
    return float(np.sum(da * db) / denom) if denom else float("nan")


SCORINGS = {"protocol": "each task scored as the protocol selects (the search objective)",
            "final": "final accuracy on every task",
            "auc": "the three recall tasks scored by the area under the test curve"}


def _task_acc(row: dict, task: str, scoring: str) -> float:
    """A task's accuracy under a scoring, recomputed from the stored final accuracy and curve."""
    from composer.mad.protocol import get_protocol

    if scoring == "protocol":
        curve = get_protocol(row["protocol"]).selection_for(task) == "auc"
    else:
        curve = scoring == "auc" and task in RECALL
    return float(np.mean([d["auc" if curve else "acc_final"] for d in row["details"][task]]))


def summarise(rows: list[dict], panel: list[str], seeds: list[int]) -> dict:
    by = {(r["pattern"], r["seed"]): r for r in rows}
    panel = [p for p in panel if all((p, s) in by for s in seeds)]
    tasks = list(by[(panel[0], seeds[0])]["tasks"]) if panel else []
    out: dict = {"panel": panel, "seeds": seeds, "tasks": tasks, "layouts": {}, "kendall_tau": {}}
    for scoring in SCORINGS:
        scores = {s: [np.mean([_task_acc(by[(p, s)], t, scoring) for t in tasks]) for p in panel] for s in seeds}
        taus = {f"{a}-{b}": kendall_tau(scores[a], scores[b]) for a, b in itertools.combinations(seeds, 2)}
        median = float(np.median(list(taus.values()))) if taus else None
        out["kendall_tau"][scoring] = {"pairs": taus, "median": median}
    for p in panel:
        rs = [by[(p, s)] for s in seeds]
        entry = {"n_attention": p.count("A"), "wall_s_median": float(np.median([r["wall_s"] for r in rs]))}
        for scoring in SCORINGS:
            per = {t: [_task_acc(r, t, scoring) for r in rs] for t in tasks}
            entry[scoring] = {t: {"mean": float(np.mean(v)), "std": float(np.std(v)), "seeds": v}
                              for t, v in per.items()}
            entry[scoring]["score"] = float(np.mean([np.mean(v) for v in per.values()]))
        out["layouts"][p] = entry
    out["recall_gap"] = _recall_gap(out, panel)
    return out


def _recall_gap(out: dict, panel: list[str]) -> dict:
    """In-context recall of each layout minus the all-MLP layout's, in accuracy points (mean over seeds)."""
    mlp = [p for p in panel if "A" not in p and set(p) == {"M"}]
    if "in_context_recall" not in out["tasks"] or not mlp:
        return {}
    gap = {}
    for scoring in SCORINGS:
        base = out["layouts"][mlp[0]][scoring]["in_context_recall"]["mean"]
        per = {p: 100 * (out["layouts"][p][scoring]["in_context_recall"]["mean"] - base) for p in panel if p != mlp[0]}
        two_a = [v for p, v in per.items() if p.count("A") >= 2]
        gap[scoring] = {"per_layout": per, "min_over_2A": min(two_a) if two_a else None}
    return gap


def markdown(summary: dict, protocol: str) -> str:
    tasks, short = summary["tasks"], {"in_context_recall": "ICR", "noisy_in_context_recall": "NICR",
                                      "fuzzy_in_context_recall": "FICR", "selective_copying": "SC",
                                      "compression": "COMP", "memorization": "MEM"}
    lines = [f"# MAD proxy discrimination ({protocol} protocol, seeds {summary['seeds']})", ""]
    for scoring, title in SCORINGS.items():
        lines += [f"## Mean over seeds: {scoring} ({title})", "",
                  "| layout | #A | " + " | ".join(short.get(t, t) for t in tasks) + " | score | wall s (median) |",
                  "|---" * (len(tasks) + 4) + "|"]
        for p, e in sorted(summary["layouts"].items(), key=lambda kv: -kv[1][scoring]["score"]):
            cells = [f"{e[scoring][t]['mean']:.3f} ± {e[scoring][t]['std']:.3f}" for t in tasks]
            lines.append(f"| {p} | {e['n_attention']} | " + " | ".join(cells)
                         + f" | {e[scoring]['score']:.3f} | {e['wall_s_median']:.0f} |")
        tau = summary["kendall_tau"][scoring]
        pairs = ", ".join(f"{k}: {v:.2f}" for k, v in tau["pairs"].items())
        if tau["median"] is not None:
            lines += ["", f"Kendall tau between seed rankings: median **{tau['median']:.2f}** ({pairs})"]
        lines.append("")
        gap = summary.get("recall_gap", {}).get(scoring)
        if gap:
            per = ", ".join(f"{p} {v:+.0f}" for p, v in gap["per_layout"].items())
            lines += [f"In-context recall minus all-MLP (points): {per}; minimum over layouts with >= 2 A: "
                      f"**{gap['min_over_2A']:+.0f}**", ""]
    return "\n".join(lines)


def main(argv=None) -> int:
    args = _args(argv)
    panel = [p.strip() for p in args.panel.split(",") if p.strip()]
    seeds = [int(s) for s in args.seeds.split(",")]
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{args.name}.jsonl"
    if not args.report_only:
        _run(args, path, panel, seeds)
    rows = [r for r in _load(path) if r["protocol"] == args.protocol]
    summary = summarise(rows, panel, seeds)
    (RESULTS / f"{args.name}.json").write_text(json.dumps(summary, indent=2) + "\n")
    (RESULTS / f"{args.name}.md").write_text(markdown(summary, args.protocol) + "\n")
    print(markdown(summary, args.protocol))
    return 0


if __name__ == "__main__":
    sys.exit(main())
