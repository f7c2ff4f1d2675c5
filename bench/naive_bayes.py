"""Multinomial naive Bayes with Laplace (add-one) smoothing: the accuracy suite's simplest baseline.

Tokens are the rnn binary's: the lowercased text split on white space, or (char=True) every
character, spaces included. A class scores log P(class) + the sum over the text's tokens of
log P(token | class), where P(token | class) = (count + 1) / (tokens of the class + V) and V is
the training vocabulary; tokens never seen in training are skipped. Ties go to the class that
sorts first. Python's standard library only.
"""

import math


def tokens_of(text, char):
    """The tokens of a text: its characters, or its lowercased white-space-separated words."""
    return list(text) if char else text.lower().split()


def train(rows, char=False):
    """A model {label: (log prior, {token: log likelihood}, log likelihood of an unseen count)}."""
    counts, totals, docs = {}, {}, {}
    for text, label in rows:
        per_label = counts.setdefault(label, {})
        for token in tokens_of(text, char):
            per_label[token] = per_label.get(token, 0) + 1
            totals[label] = totals.get(label, 0) + 1
        docs[label] = docs.get(label, 0) + 1
    vocab = {token for per_label in counts.values() for token in per_label}
    model = {}
    for label in sorted(counts):
        denominator = math.log(totals.get(label, 0) + len(vocab))
        likelihoods = {token: math.log(n + 1) - denominator for token, n in counts[label].items()}
        model[label] = (math.log(docs[label] / len(rows)), likelihoods, -denominator)
    return {"char": char, "vocab": vocab, "classes": model}


def predict(model, text):
    """The most probable label of a text."""
    tokens = [t for t in tokens_of(text, model["char"]) if t in model["vocab"]]
    best, best_score = None, -math.inf
    for label, (prior, likelihoods, unseen) in model["classes"].items():
        score = prior + sum(likelihoods.get(t, unseen) for t in tokens)
        if score > best_score:
            best, best_score = label, score
    return best


def accuracy(model, rows):
    """The share of (text, label) rows whose label the model predicts."""
    return sum(predict(model, text) == label for text, label in rows) / len(rows)
