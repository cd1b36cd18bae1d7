"""Copy a fidelity study's report and tables into experiments/results/ under one prefix.

Usage: python experiments/fidelity_publish.py runs/fidelity-small experiments/results/fidelity_small
Writes <prefix>.md, <prefix>_summary.json, <prefix>.png, <prefix>.parquet and <prefix>_proxy.parquet.
"""

import shutil
import sys
from pathlib import Path


def main(study: str, prefix: str) -> int:
    src, dst = Path(study), Path(prefix)
    pairs = {"fidelity.md": ".md", "summary.json": "_summary.json", "fidelity.png": ".png",
             "fidelity.parquet": ".parquet", "proxy.parquet": "_proxy.parquet", "settings.json": "_settings.json"}
    dst.parent.mkdir(parents=True, exist_ok=True)
    copied = 0
    for name, suffix in pairs.items():
        if (src / name).exists():
            shutil.copyfile(src / name, dst.with_name(dst.name + suffix))
            copied += 1
    print(f"copied {copied} file(s) from {src} to {dst}*")
    return 0 if copied else 1


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:3]))
