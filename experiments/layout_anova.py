"""Is there any layout effect among a set's recurrent layouts under a proxy? A one-way ANOVA of the seed
scores over layouts (scipy's ``f_oneway``), the Transformer (only ``A`` and ``M``) left out, on a
published-judge table::

    python experiments/layout_anova.py experiments/results/published_d24.parquet text
    python experiments/layout_anova.py experiments/results/published.parquet text \\
        --plan experiments/results/published_plan.json --set mamba2_2024_num_attention

``--plan``/``--set`` keep the layouts one judgement evaluated (a study holds several sets).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import f_oneway


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("table")
    p.add_argument("protocol")
    p.add_argument("--plan")
    p.add_argument("--set", dest="set_name")
    args = p.parse_args(argv)
    rows = pd.read_parquet(args.table)
    transformer = rows.layout.map(lambda layout: set(layout) <= {"A", "M"})
    rows = rows[(rows.protocol == args.protocol) & (rows.status == "ok") & ~transformer]
    if args.plan:
        (layouts,) = [j["layouts"] for j in json.loads(Path(args.plan).read_text())["judgements"]
                      if j["set"] == args.set_name and j["protocol"] == args.protocol]
        rows = rows[rows.layout.isin(layouts)]
    groups = [g.score.to_numpy() for _, g in rows.groupby("layout")]
    f, pvalue = f_oneway(*groups)
    sd = float(np.sqrt(np.mean([g.var(ddof=1) for g in groups])))
    means = np.array([g.mean() for g in groups])
    print(f"{len(groups)} layouts x {len(rows) / len(groups):.0f} seeds: F = {f:.2f}, p = {pvalue:.2f}; "
          f"pooled seed SD {sd:.4f}, SD of layout means {means.std(ddof=1):.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
