"""The data rules that the PyTorch and numpy peers share, so that they read the same examples.

TSV with `text` and `label` columns (no quoting; a `"` is an ordinary character), tokens as
the rnn binary makes them, and a vocabulary of `<unk>` (id 0) then every training token in
order of first appearance.
"""


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


def tokenize(text, char=False, max_len=0):
    """The tokens of a text: characters, or lowercased white-space-separated words; first max_len."""
    tokens = list(text) if char else text.lower().split()
    return tokens[:max_len] if max_len else tokens


def build_vocab(token_lists):
    """{token: id}: `<unk>` is 0, then every token in order of first appearance."""
    vocab = {"<unk>": 0}
    for tokens in token_lists:
        for t in tokens:
            if t not in vocab:
                vocab[t] = len(vocab)
    return vocab
