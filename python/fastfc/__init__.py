"""fastfc: hyperparameter search for small fully-connected networks, in-process on fastfc's Rust
engine (CPU, or CUDA when the wheel carries the kernels and a GPU is there).

- :func:`search` trains a strategy's runs on your arrays and returns a :class:`Study`
  (``results`` DataFrame, ``best_params``, ``best_value``, ``best_model``).
- :class:`FCNNClassifier` is a scikit-learn estimator (pipelines, ``RandomizedSearchCV``).
- :func:`load_study`, :func:`load_model` open what the CLI or Python wrote.
- :mod:`fastfc.datasets` has Fashion-MNIST as the seed notebook used it.
"""

from . import datasets
from ._native import __version__
from ._space import choice, int_range, loguniform, to_toml, uniform
from .model import Model, load_model
from .study import STRATEGIES, Study, load_study, search


def devices() -> str:
    """What this build can run on: the CPU, each CUDA device (or why none), the kernels."""
    from ._native import devices as _d
    return _d()


def __getattr__(name):
    # scikit-learn is optional: FCNNClassifier imports it on first use.
    if name == "FCNNClassifier":
        from .sklearn import FCNNClassifier
        return FCNNClassifier
    raise AttributeError(f"module 'fastfc' has no attribute {name!r}")


__all__ = ["search", "Study", "load_study", "Model", "load_model", "FCNNClassifier",
           "datasets", "choice", "int_range", "loguniform", "uniform", "to_toml",
           "STRATEGIES", "devices", "__version__"]
