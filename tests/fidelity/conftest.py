"""A small fake corpus package (a tarball shaped like the real one) for corpus and source tests."""

import hashlib
import io
import tarfile

import pytest

from composer.corpus import Corpus

DOCS = {
    "alpha.txt": "aaaa alpha " * 200,
    "beta.txt": "bbbb beta " * 150,
    "gamma.txt": "gggg gamma caf\u00e9 " * 120,  # stored Latin-1 in the package
    "delta.txt": "dddd delta " * 100,
}


def make_tarball(path, docs=DOCS, latin1=("gamma.txt",)):
    with tarfile.open(path, "w:gz") as tar:
        for name, text in docs.items():
            data = text.encode("latin-1" if name in latin1 else "utf-8")
            info = tarfile.TarInfo(f"package/texts/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


@pytest.fixture
def fake_corpus(tmp_path):
    tarball = make_tarball(tmp_path / "fake-1.0.0.tgz")
    sha = hashlib.sha256(tarball.read_bytes()).hexdigest()
    corpus = Corpus(name="fake", package="fake@1.0.0", sha256=sha, member_dir="package/texts",
                    documents=tuple(sorted(DOCS)), validation=("beta.txt", "delta.txt"), latin1=("gamma.txt",))
    return corpus, tarball, tmp_path / "cache"
