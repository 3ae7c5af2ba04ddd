"""``FCNNClassifier``: one fastfc network as a scikit-learn estimator, so pipelines,
``cross_val_score``, ``RandomizedSearchCV`` and ``HalvingRandomSearchCV`` take it.

``fit`` holds out ``validation_fraction`` of the rows (stratified, from ``random_state``) for
early stopping on validation loss, keeping the best epoch's weights (Keras'
``EarlyStopping(restore_best_weights=True)``); the rest trains on fastfc's engine with the GIL
released."""

from __future__ import annotations

import json
from typing import Optional, Sequence

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted

try:  # scikit-learn >= 1.6
    from sklearn.utils.validation import validate_data as _validate_data
except ImportError:  # pragma: no cover - older scikit-learn
    def _validate_data(est, *args, **kw):
        return est._validate_data(*args, **kw)

from . import _data, _native
from ._progress import Progress
from .model import Model


class FCNNClassifier(ClassifierMixin, BaseEstimator):
    """A fully-connected network classifier trained by fastfc.

    Parameters
    ----------
    hidden : widths of the hidden layers, input side first.
    activation : elu, celu, gelu, relu, selu, silu, tanh, sigmoid, leaky_relu, softplus or mish.
    optimizer : adam, lion, sgd, rmsprop, adamw or adagrad (each with Keras' defaults).
    learning_rate, dropout : as in Keras.
    beta_1, beta_2 : adam, adamw and lion; momentum : sgd and rmsprop; nesterov : sgd;
        rho : rmsprop (None: Keras' default; an optimizer without the parameter refuses it).
    weight_decay : decoupled for adamw (Keras, default 0.004), L2 added to the gradient for the
        others (PyTorch's weight_decay; default 0).
    schedule : "constant", "cosine" (warmup_epochs, decay_epochs: default the epochs),
        "exponential" or "step" (decay_rate, decay_epochs): the learning rate per step.
    epochs : the most epochs to train.
    batch_size : rows per step (clipped to the training rows, as MLPClassifier does).
    patience : epochs without a lower validation loss before stopping (0: never stop early;
        the best epoch's weights are kept either way).
    validation_fraction : rows held out for early stopping (at least one per fit).
    scale : "standard" (default), "minmax" or "none": fitted on the training rows.
    random_state : seeds the initial weights, dropout, batch order and the validation rows.
    device : "auto", "cpu", "cuda", "cuda:N".
    verbose : 0 silent, 1 a progress bar and a line per epoch.
    """

    def __init__(self, hidden: Sequence[int] = (64, 64), activation: str = "elu",
                 optimizer: str = "adam", learning_rate: float = 1e-3, dropout: float = 0.0,
                 epochs: int = 30, batch_size: int = 32, patience: int = 5,
                 validation_fraction: float = 0.1, scale: str = "standard",
                 random_state: Optional[int] = None, device: str = "auto",
                 threads: Optional[int] = None, verbose: int = 0,
                 beta_1: Optional[float] = None, beta_2: Optional[float] = None,
                 momentum: Optional[float] = None, nesterov: bool = False,
                 rho: Optional[float] = None, weight_decay: Optional[float] = None,
                 schedule: str = "constant", warmup_epochs: Optional[float] = None,
                 decay_epochs: Optional[float] = None, decay_rate: Optional[float] = None):
        self.hidden = hidden
        self.activation = activation
        self.optimizer = optimizer
        self.learning_rate = learning_rate
        self.dropout = dropout
        self.epochs = epochs
        self.batch_size = batch_size
        self.patience = patience
        self.validation_fraction = validation_fraction
        self.scale = scale
        self.random_state = random_state
        self.device = device
        self.threads = threads
        self.verbose = verbose
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.momentum = momentum
        self.nesterov = nesterov
        self.rho = rho
        self.weight_decay = weight_decay
        self.schedule = schedule
        self.warmup_epochs = warmup_epochs
        self.decay_epochs = decay_epochs
        self.decay_rate = decay_rate

    def _seed(self) -> int:
        rs = self.random_state
        if isinstance(rs, (int, np.integer)) and not isinstance(rs, bool) and not 0 <= rs < 2**32:
            raise ValueError(f"random_state: {rs!r}; expected None, an integer 0..2**32-1 or a "
                             "numpy RandomState/Generator")
        if rs is None:
            return int(np.random.randint(0, 2**31 - 1))
        if isinstance(rs, np.random.RandomState):
            return int(rs.randint(0, 2**31 - 1))
        if isinstance(rs, np.random.Generator):
            return int(rs.integers(0, 2**31 - 1))
        return int(rs)

    def fit(self, X, y):
        """Trains on (X, y); returns self."""
        X, y = _validate_data(self, X, y, dtype=[np.float32, np.float64], reset=True)
        check_classification_targets(y)
        classes, codes = np.unique(y, return_inverse=True)
        if len(classes) < 2:
            raise ValueError(
                f"y: only one class ({classes[0]!r}); a classifier needs at least 2 classes")
        vf = float(self.validation_fraction)
        if not 0.0 < vf < 1.0:
            raise ValueError(f"validation_fraction: {vf}; expected a fraction strictly between 0 and 1")
        n = X.shape[0]
        if round(n * vf) < 1 or n - round(n * vf) < len(classes):
            raise ValueError(
                f"X: {n} samples; with validation_fraction={vf} at least one row is held out for "
                f"validation and one per class ({len(classes)} classes) trains: give more samples")
        for name in ("epochs", "batch_size", "patience"):
            v = getattr(self, name)
            low = 0 if name == "patience" else 1
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < low:
                raise ValueError(f"{name}: {v!r}; expected an integer >= {low}")
        seed = self._seed()
        data = _native.dataset(
            X, codes.astype(np.uint32).ravel(), _data.class_names(classes),
            f"arrays given to FCNNClassifier.fit (X {X.shape[0]}x{X.shape[1]} {X.dtype})",
            validation_split=vf, scale=self.scale, seed=seed)
        n_train = data.rows[0]
        opts = {
            "hidden": [int(h) for h in self.hidden], "activation": str(self.activation),
            "optimizer": str(self.optimizer), "learning_rate": float(self.learning_rate),
            "dropout": float(self.dropout), "epochs": int(self.epochs),
            "batch_size": max(1, min(int(self.batch_size), n_train)),
            "patience": int(self.patience), "seed": seed, "device": str(self.device),
            "threads": self.threads,
            "knobs": {
                "beta_1": self.beta_1, "beta_2": self.beta_2, "momentum": self.momentum,
                "nesterov": bool(self.nesterov), "rho": self.rho,
                "weight_decay": self.weight_decay, "schedule": str(self.schedule),
                "warmup_epochs": self.warmup_epochs, "decay_epochs": self.decay_epochs,
                "decay_rate": self.decay_rate,
            },
        }
        progress = Progress(int(self.verbose))

        def on_event(kind, *args):
            if kind == "steps":
                progress.steps(args[0])
            elif kind == "start":
                progress.start(args[0], args[2])
            elif kind == "epoch":
                e = json.loads(args[0])
                progress.line(
                    f"epoch {e['epoch']:>3}/{self.epochs}  loss {float(e['loss']):.4f}  "
                    f"acc {float(e['accuracy']):.4f}  val_loss {float(e['val_loss']):.4f}  "
                    f"val_acc {float(e['val_accuracy']):.4f}")
        try:
            native, metrics = _native.train(data, json.dumps(opts), on_event)
        finally:
            progress.close()
        self.metrics_ = json.loads(metrics)
        self.model_ = Model(native, classes)
        self.classes_ = classes
        self.n_iter_ = int(self.metrics_["epochs_trained"])
        self.history_ = self.metrics_["history"]
        self.best_epoch_ = int(self.metrics_["best_epoch"])
        return self

    def predict_proba(self, X) -> np.ndarray:
        check_is_fitted(self)
        X = _validate_data(self, X, dtype=[np.float32, np.float64], reset=False)
        p = self.model_.predict_proba(X).astype(np.float64)
        # float32 softmax rows sum to 1 within rounding; renormalised in float64.
        return p / p.sum(axis=1, keepdims=True)

    def predict(self, X) -> np.ndarray:
        check_is_fitted(self)
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]

    def save(self, path, *, overwrite: bool = False) -> str:
        """Writes the fitted model (see :meth:`fastfc.Model.save`)."""
        check_is_fitted(self)
        return self.model_.save(path, overwrite=overwrite)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.non_deterministic = self.random_state is None
        return tags

    def _more_tags(self):  # scikit-learn < 1.6
        return {"non_deterministic": self.random_state is None}


