"""A trained fastfc model in Python: predict, score, save, and the weights for PyTorch."""

from __future__ import annotations

import json
import os
from typing import Any, Dict, Optional

import numpy as np

from . import _native
from ._data import as_features, as_labels, labels_from_names


class Model:
    """A trained network with its classes and input scaling (what ``best/model.safetensors``
    holds). ``predict_proba`` columns follow ``classes_``."""

    def __init__(self, native: "_native.Model", classes: Optional[np.ndarray] = None):
        self._m = native
        self.classes_ = classes if classes is not None else labels_from_names(native.classes)
        self.config: Dict[str, Any] = json.loads(native.config)

    @property
    def n_features_in_(self) -> int:
        return self._m.features

    @property
    def params(self) -> Dict[str, Any]:
        """The hyperparameters: hidden, activation, dropout, learning_rate, optimizer, batch_size,
        and those of the knobs the model was trained with (beta_1, beta_2, momentum, nesterov, rho,
        weight_decay, schedule; a schedule as a dict with its ``kind``)."""
        keys = ("hidden", "activation", "dropout", "learning_rate", "optimizer", "batch_size",
                "beta_1", "beta_2", "momentum", "nesterov", "rho", "weight_decay", "schedule")
        return {k: self.config[k] for k in keys if k in self.config}

    def predict_proba(self, x) -> np.ndarray:
        """Class probabilities, shape (rows, classes), columns in ``classes_`` order."""
        return self._m.predict_proba(as_features(x, "x"))

    def predict(self, x) -> np.ndarray:
        """The most probable class of each row, as the training labels were."""
        return self.classes_[np.argmax(self.predict_proba(x), axis=1)]

    def score(self, x, y) -> float:
        """Accuracy on (x, y)."""
        y = as_labels(y, "y")
        p = self.predict(x)
        if len(y) != len(p):
            raise ValueError(f"y: {len(y)} labels for the {len(p)} rows of x")
        return float(np.mean(p == y))

    def evaluate(self, x, y) -> Dict[str, float]:
        """Accuracy and mean cross-entropy on (x, y) (labels must be among ``classes_``)."""
        from ._data import encode
        y = as_labels(y, "y")
        _, codes = encode(y, self.classes_, "y")
        p = self.predict_proba(x)
        if len(codes) != len(p):
            raise ValueError(f"y: {len(codes)} labels for the {len(p)} rows of x")
        pt = np.clip(p[np.arange(len(codes)), codes], 1e-12, None)
        return {"accuracy": float(np.mean(np.argmax(p, axis=1) == codes)),
                "loss": float(-np.mean(np.log(pt)))}

    def state_dict(self) -> Dict[str, np.ndarray]:
        """Weights named as PyTorch's nn.Linear layers: ``layers.{i}.weight`` (out, in),
        ``layers.{i}.bias``. ``torch.from_numpy`` each into an ``nn.Sequential`` of Linear layers
        (activation between them) to use the model in PyTorch."""
        return dict(self._m.state_dict())

    def save(self, path, *, overwrite: bool = False) -> str:
        """Writes the model: ``path`` ending in ``.safetensors`` is that file (config in its
        metadata, as safetensors and PyTorch read it); any other path is a folder that gets
        ``model.safetensors`` and ``config.json``, as the CLI writes. Refuses to replace an
        existing file unless ``overwrite=True``. Returns the path written."""
        path = os.fspath(path)
        if path.endswith(".safetensors"):
            targets = [path]
        else:
            targets = [os.path.join(path, "model.safetensors"), os.path.join(path, "config.json")]
        held = [t for t in targets if os.path.exists(t)]
        if held and not overwrite:
            raise FileExistsError(f"{held[0]}: exists; pass overwrite=True to replace it, or choose another path")
        if path.endswith(".safetensors"):
            parent = os.path.dirname(path)
            if parent:
                os.makedirs(parent, exist_ok=True)
            tmp = path + ".tmp"
            with open(tmp, "wb") as f:
                f.write(self._m.to_bytes())
            os.replace(tmp, path)
        else:
            self._m.save_dir(path)
        return path

    def __getstate__(self):
        return {"bytes": bytes(self._m.to_bytes()), "classes": self.classes_}

    def __setstate__(self, state):
        self.__init__(_native.Model.from_bytes(state["bytes"]), state["classes"])

    def __repr__(self) -> str:
        p = self.params
        return (f"<fastfc.Model hidden={p['hidden']} {p['activation']} {p['optimizer']} "
                f"lr={p['learning_rate']:.3g} dropout={p['dropout']:.3g}: "
                f"{self.n_features_in_} features -> {len(self.classes_)} classes>")


def load_model(path) -> Model:
    """Reads a model written by fastfc (a ``.safetensors`` file, or a folder holding
    ``model.safetensors``: a study's ``best/``, ``fastfc train --out``)."""
    return Model(_native.Model.load(os.fspath(path)))
