"""The data rules that the PyTorch and numpy peers share, so that they read the same examples.

TSV with `text` and `label` columns (no quoting; a `"` is an ordinary character), tokens as
the rnn binary makes them, and a vocabulary of `<unk>` (id 0) then every training token in
order of first appearance.
"""

import re


def read_tsv(path):
    """(text, label) rows of a TSV file with a header naming `text` and `label` columns."""
    with open(path, encoding="utf-8") as f:
        header = f.readline().rstrip("\n").split("\t")
        ti, li = header.index("text"), header.index("label")
        rows = []
        for line in f:
            line = line.rstrip("\n")
            if line:
                fields = line.split("\t")
                rows.append((fields[ti], fields[li]))
    return rows


WORD_OR_PUNCT = re.compile(r"\w+|[^\w\s]")


def tokenize(text, rule=False, max_len=0):
    """The tokens of a text, the first max_len: characters (rule True or "char"), lowercased
    runs of word characters and single other characters ("wordpunct", as `rnn`'s rule, but for
    combining marks, which Python's \\w leaves out), or lowercased white-space-separated words."""
    if rule is True or rule == "char":
        tokens = list(text)
    elif rule == "wordpunct":
        tokens = WORD_OR_PUNCT.findall(text.lower())
    else:
        tokens = text.lower().split()
    return tokens[:max_len] if max_len else tokens


def build_vocab(token_lists):
    """{token: id}: `<unk>` is 0, then every token in order of first appearance."""
    vocab = {"<unk>": 0}
    for tokens in token_lists:
        for t in tokens:
            if t not in vocab:
                vocab[t] = len(vocab)
    return vocab
