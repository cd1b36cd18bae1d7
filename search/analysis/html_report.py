"""``composer report``: one self-contained HTML file (figures embedded as PNG) plus the PNGs themselves."""

from __future__ import annotations

import base64
import html
import io
import math
from pathlib import Path

from composer.atomic import write_bytes
from search.analysis.figures import FIGURES
from search.analysis.tables import Run

__all__ = ["write_report"]

_CSS = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;color:#222}
table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}
th{background:#f2f2f2}td:nth-child(2){text-align:left;font-family:monospace}img{max-width:100%}
.note{color:#555;font-size:14px}table.facts th{text-align:left}table.facts td{text-align:left;font-family:inherit}"""


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")  # nothing clipped at the edges
    import matplotlib.pyplot as plt

    plt.close(fig)
    return buf.getvalue()


def _num(x, spec="{:.4f}") -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "n/a"
    return spec.format(x)


HEADERS = {"rank": "#", "pattern": "layout", "score_mean": "proxy score (mean)", "score_se": "± SE",
           "n_seeds": "seeds", "target_params": "parameters at target (with embeddings)",
           "target_kv_cache_bytes": "KV cache bytes per sequence at target"}


def _table(run: Run, k: int) -> str:
    cols = list(HEADERS)
    head = "".join(f"<th>{html.escape(HEADERS[c])}</th>" for c in cols)
    body = []
    for r in run.layouts.head(k).to_dict("records"):
        cells = [str(r["rank"]), html.escape(r["pattern"]), _num(r["score_mean"]), _num(r["score_se"]),
                 str(r["n_seeds"]), _num(r.get("target_params"), "{:,.0f}"),
                 _num(r.get("target_kv_cache_bytes"), "{:,.0f}")]
        body.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


def _margin(run: Run) -> str:
    from search.results.summary import margin_text

    m = run.summary.get("winner_vs_llama")
    if not m:
        return "<p class=note>No winner-vs-Llama margin in summary.json (an older or unfinished run).</p>"
    return (f"<p>Winner <code>{html.escape(str(m['winner']))}</code> minus Llama <code>{html.escape(str(m['llama']))}"
            f"</code>: {html.escape(margin_text(m))}: <b>{html.escape(m['verdict'])}</b></p>")


def _facts(run: Run) -> str:
    """What produced these numbers: protocol, steps scale, budget, seeds, date and version."""
    import datetime as dt

    settings = run.summary.get("settings") or {}
    budget = run.summary.get("budget") or {}
    protocols = sorted(set(run.ok["protocol"].dropna())) if "protocol" in run.ok else []
    seeds = sorted(int(s) for s in run.ok["seed"].dropna().unique()) if "seed" in run.ok else []
    import json

    code = sorted(set(run.ok["git_sha"].dropna().astype(str).str[:10])) if "git_sha" in run.ok else []
    versions = {}
    if "versions_json" in run.ok and run.ok["versions_json"].notna().any():
        versions = json.loads(run.ok["versions_json"].dropna().iloc[0])
    facts = [("protocol", ", ".join(protocols) or "-"), ("steps scale", settings.get("steps_scale") or 1.0),
             ("budget", f"{budget.get('used', '-')} of {budget.get('effective', settings.get('budget', '-'))} "
                        "evaluations"),
             ("seeds", f"{len(seeds)} ({seeds[0]}-{seeds[-1]})" if seeds else "-"),
             ("space", f"{settings.get('depth', '-')} layers of {','.join(settings.get('primitives') or [])}"),
             ("report written", dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")),
             ("code version", ", ".join(code) or "-"),
             ("versions", ", ".join(f"{k} {versions[k]}" for k in ("jax", "flax", "optuna") if k in versions) or "-")]
    cells = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>" for k, v in facts)
    return f"<table class=facts>{cells}</table>"


def write_report(run: Run, out: Path, *, top: int = 20) -> Path:
    """Write ``report.html`` and one PNG per figure into ``out``; return the HTML path."""
    out.mkdir(parents=True, exist_ok=True)
    parts = [f"<!doctype html><html><head><meta charset=utf-8><title>Composer run {html.escape(run.name)}</title>"
             f"<style>{_CSS}</style></head><body><h1>Composer run <code>{html.escape(run.name)}</code></h1>"]
    proxy = run.summary.get("proxy") or {}
    target = run.summary.get("target") or {}
    if proxy:
        parts.append(f"<p>Winner <code>{html.escape(str(proxy.get('pattern')))}</code>, at "
                     f"{html.escape(str(target.get('scale')))}: <code>{html.escape(str(target.get('pattern')))}"
                     f"</code> ({_num(target.get('params'), '{:,.0f}')} parameters).</p>")
    parts.append(_facts(run))
    learning = run.summary.get("learning") or {}
    if learning.get("at_chance"):
        parts.append(f"<p><b>Warning:</b> every layout scored at chance level (best {_num(learning['best_score'])}, "
                     f"chance {_num(learning['chance'])}): the proxy learned nothing, so this ranking is noise.</p>")
    parts.append(_margin(run))
    parts.append(f"<h2>Best {min(top, len(run.layouts))} layouts (mean over seeds)</h2>{_table(run, top)}")
    for name, draw in FIGURES.items():
        fig = draw(run)
        if fig is None:
            continue
        data = _png(fig)
        write_bytes(out / f"{name}.png", data)
        b64 = base64.b64encode(data).decode()
        parts.append(f"<h2>{name.replace('_', ' ')}</h2><img alt='{name}' src='data:image/png;base64,{b64}'>")
    parts.append("</body></html>")
    from composer.atomic import write_text

    return write_text(out / "report.html", "\n".join(parts))
