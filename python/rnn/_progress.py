"""The callback a run reports to: the caller's own, and with ``verbose=True`` a tqdm bar (when
tqdm is installed) or a line per epoch."""

import sys


class _Progress:
    """Calls the caller's callback, and shows progress when ``verbose``."""

    def __init__(self, callback, verbose, epochs):
        self.callback = callback
        self.verbose = verbose
        self.epochs = epochs
        self.bar = None
        self.bar_epoch = None

    def __call__(self, event):
        if self.verbose:
            self._show(event)
        if self.callback is not None:
            return self.callback(event)
        return None

    def _show(self, event):
        kind = event["event"]
        if kind == "step":
            tqdm = _tqdm()
            if tqdm is None:
                return
            if self.bar is None or self.bar_epoch != event["epoch"]:
                self.close()
                self.bar = tqdm(
                    total=event["total"],
                    desc=f"epoch {event['epoch']}/{self.epochs}",
                    unit="ex",
                    leave=False,
                )
                self.bar_epoch = event["epoch"]
            self.bar.update(event["done"] - self.bar.n)
        elif kind == "epoch":
            self.close()
            line = f"epoch {event['epoch']}: train loss {event['train_loss']:.4f} acc {event['train_accuracy']:.4f}"
            if event.get("valid_loss") is not None:
                line += f", valid loss {event['valid_loss']:.4f} acc {event['valid_accuracy']:.4f}"
            print(line, file=sys.stderr)
        elif kind == "trial":
            self.close()
            changed = " ".join(f"{k}={v!r}" for k, v in event["params"].items()) or "as given"
            best = "  best so far" if event["best"] else ""
            print(
                f"trial {event['number']}: {changed}: valid acc {event['valid_accuracy']:.4f}"
                f" loss {event['valid_loss']:.4f}, {event['epochs']} epochs{best}",
                file=sys.stderr,
            )
        elif kind == "warning":
            self.close()
            print(f"warning: {event['message']}", file=sys.stderr)

    def close(self):
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def _tqdm():
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return None
    return tqdm


def progress_callback(callback, verbose, epochs):
    """The callback for a run, or None when there is nothing to call."""
    if callback is None and not verbose:
        return None
    if callback is not None and not callable(callback):
        raise ValueError(f"callback must be callable, not {type(callback).__name__}")
    return _Progress(callback, verbose, epochs)
