"""How deep the published judge must map a set for a proxy to be able to beat its rule of thumb.

For each published set and mapped depth, the distinct layouts evaluated and the most Spearman any proxy
can reach there (``search.published.set_agreement.mapping_ceiling``: published layouts that map to one
evaluated layout share its score), beside the set's rule of thumb. Builds specs only, trains nothing::

    python experiments/mapping_depth.py [--depths 12,16,24,48]

writes ``experiments/results/mapping_depth.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from scaling.counting import non_embedding_params
from search.fidelity.rank_agreement import spearman
from search.protocols import evaluator_config
from search.published.heuristics import heuristic_score
from search.published.judge import plan_layouts
from search.published.set_agreement import mapping_ceiling
from search.published.sets import SETS_DIR, load_set

SETS = ("bae2025_1b", "bae2025_350m", "kimi2025_ratio", "mamba2_2024_num_attention", "samba2025_layers_1.3b",
        "samba2025_layers_438m", "samba2025_position")
OUT = Path(__file__).resolve().parent / "results" / "mapping_depth.json"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--depths", default="12,16,24,48")
    args = p.parse_args(argv)
    depths = [int(d) for d in args.depths.split(",")]
    evaluator = evaluator_config("text", seed=0).build()  # matched parameters as the judge maps them for text

    def params(pattern: str) -> int:
        return non_embedding_params(evaluator.spec(pattern))

    out = {}
    for name in SETS:
        s = load_set(SETS_DIR / f"{name}.json")
        values = [row.value for row in s.layouts]
        truth = -np.asarray(values) if s.direction == "lower" else np.asarray(values)
        rule = float(spearman(np.array([heuristic_score(s.heuristic, row.layout) for row in s.layouts]), truth))
        out[name] = {"rule_of_thumb": rule, "depths": {}}
        for depth in depths:
            layouts = plan_layouts(s, depth, evaluator, params)
            bound = mapping_ceiling(values, layouts)
            out[name]["depths"][str(depth)] = {"evaluated": len(set(layouts)), "mapping_ceiling": bound}
            print(f"{name:28s} depth {depth:2d}: {len(set(layouts)):2d} of {len(values):2d} evaluated, "
                  f"most a proxy can reach {bound:+.2f} (rule of thumb {rule:+.2f})")
    OUT.write_text(json.dumps(out, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
