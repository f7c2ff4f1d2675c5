"""What the package's estimators share: a model file behind them, training with progress and
Ctrl-C, and pickling (the model travels as its file's bytes)."""

import os
import tempfile

from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from ._progress import progress_callback


def file_bytes(native):
    """The bytes of the model file that ``native.save`` writes."""
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "model.safetensors")
        native.save(path)
        with open(path, "rb") as f:
            return f.read()


def from_file_bytes(native_class, data):
    """``native_class.load`` of a model file holding ``data``."""
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "model.safetensors")
        with open(path, "wb") as f:
            f.write(data)
        return native_class.load(path)


class ModelEstimator(BaseEstimator):
    """An estimator whose fitted state is one native model (``model_``) of ``_native``."""

    _native = None

    def _train(self, fit, *args, checkpoint=None, resume=None):
        """Runs ``fit(*args, callback)`` (a native training function) with this estimator's
        callback and progress display, writing the run's checkpoint to ``checkpoint`` and
        continuing the run of ``resume`` (paths, or None); keeps its report and history. After a
        Ctrl-C (the model is kept) raises KeyboardInterrupt. Returns the native model."""
        callback = progress_callback(self.callback, self.verbose, self.epochs)
        paths = {
            "checkpoint": None if checkpoint is None else os.fspath(checkpoint),
            "resume": None if resume is None else os.fspath(resume),
        }
        try:
            model, report = fit(*args, callback, **paths)
        finally:
            if callback is not None:
                callback.close()
        self.report_ = report
        self.history_ = report["history"]
        self.best_epoch_ = report["best_epoch"]
        return model

    @staticmethod
    def _raise_if_interrupted(report):
        if report["keyboard_interrupt"]:
            raise KeyboardInterrupt(
                "training stopped by Ctrl-C; the model keeps the best weights so far"
            )

    def save(self, path):
        """Writes the model file (atomically), as the command line writes it: the command line
        and ``rnn.load`` read it, and PyTorch loads it as a state dict. Missing folders on the
        way are created, as ``rnn train`` creates them."""
        check_is_fitted(self, "model_")
        self.model_.save(os.fspath(path))

    @property
    def vocabulary_(self):
        """The tokens the model knows, by index (``<unk>`` first)."""
        check_is_fitted(self, "model_")
        return self.model_.vocabulary

    def __getstate__(self):
        state = dict(super().__getstate__())  # a copy: it may be the instance's own __dict__
        if "model_" in state:
            state["model_"] = file_bytes(state["model_"])
        return state

    def __setstate__(self, state):
        if isinstance(state.get("model_"), bytes):
            state["model_"] = from_file_bytes(self._native, state["model_"])
        super().__setstate__(state)
