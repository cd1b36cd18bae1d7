"""Every stored proxy against a fidelity study's ground truth: Spearman and Kendall with bootstrap 95 %
intervals, over all layouts the proxy scored and over those with >= 2 attention layers.

The study's own report judges one proxy (``--proxy-protocol``); this reads its truth table once and
scores each committed proxy file against it, without training anything.

    python experiments/fidelity_proxies.py experiments/results/fidelity_fair.parquet \
        experiments/results/fidelity_fair_proxies

writes ``<prefix>.md`` and ``<prefix>.json``.
"""

import json
import sys
from pathlib import Path

from search.fidelity.proxy import rows_from_file
from search.fidelity.truth_markdown import clean_json
from search.fidelity.truth_report import build_summary
from search.fidelity.truth_rows import TruthRow
from search.results.parquet import read_parquet

RESULTS = Path(__file__).resolve().parent / "results"
PROXIES = {  # protocol label -> committed file of its scores (6-layer layouts, 2-3 seeds)
    "capacity": "proxy_capacity.jsonl",
    "cpu": "proxy_cpu.jsonl",  # rescored 2026-12-04 (13 layouts x 2 seeds): the older mad_discrimination.jsonl
    # scores came from an earlier cpu code and do not reproduce
    "text": "proxy_text.jsonl",
    "mix": "proxy_mix.jsonl",
    "capacity-lr": "proxy_capacity_lr.jsonl",
    "text-short": "proxy_text_short.jsonl",
    "text-lr": "proxy_text_lr.jsonl",  # judged 2026-12-07 (proxy_variants.md, predictions L1-L5)
    "text-noconv": "proxy_text_noconv.jsonl",  # judged 2026-12-07 (predictions N1-N5)
}


def _fmt(d: dict) -> str:
    ok = lambda x: x is not None and x == x  # noqa: E731  (None or NaN: undefined)
    if not ok(d.get("value")):
        return "n/a"
    ci = f" [{d['lo']:+.2f}, {d['hi']:+.2f}]" if ok(d.get("lo")) and ok(d.get("hi")) else " (no interval)"
    return f"{d['value']:+.2f}{ci}"


def main(truth_path: str, prefix: str) -> int:
    truth = [TruthRow.from_dict(r) for r in read_parquet(truth_path).to_dict("records")]
    out = {}
    for protocol, name in PROXIES.items():
        if not (RESULTS / name).exists():  # a candidate not yet judged
            continue
        rows = [r for r in rows_from_file(RESULTS / name) if r.protocol == protocol]
        s = build_summary(truth, rows, proxy_protocol=protocol, n_boot=2000).to_dict()
        out[protocol] = {"correlation": s["correlation"], "main_tokens": s["main_tokens"],
                         "truth_layouts": sorted(s["layouts"]), "source": name}
    lines = ["# Every stored proxy against the fair real-text ground truth", "",
             f"Ground truth: `{Path(truth_path).name}` (main budget {out['capacity']['main_tokens']:,} tokens; "
             "seed means). Proxies: the committed 6-layer scores of each protocol. Spearman / Kendall of the "
             "proxy score against the negated validation loss, bootstrap 95 % CI over layouts and seeds.", "",
             "| proxy | layouts | n | Spearman | Kendall |", "|---|---|---|---|---|"]
    for protocol, r in out.items():
        for group, c in r["correlation"].items():
            sp, kd = c["spearman"], c["kendall"]
            label = "all" if group == "all" else ">= 2 A"
            lines.append(f"| {protocol} | {label} | {sp['n_layouts']} | {_fmt(sp)} | {_fmt(kd)} |")
    Path(prefix + ".md").write_text("\n".join(lines) + "\n")
    Path(prefix + ".json").write_text(json.dumps(clean_json(out), indent=2) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:3]))
