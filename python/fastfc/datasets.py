"""Data sets that come with fastfc."""

from __future__ import annotations

from typing import Optional

from . import _native

#: Fashion-MNIST's class names, by label 0..9.
FASHION_MNIST_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal",
                         "Shirt", "Sneaker", "Bag", "Ankle boot")


def fashion_mnist(size: int = 8, data_dir: Optional[str] = None, *, return_source: bool = False):
    """Fashion-MNIST downsampled to ``size`` x ``size`` as the CLI uses it, with the seed
    notebook's leak-free split: ``((x_train, y_train), (x_val, y_val), (x_test, y_test))`` of
    50,000 / 10,000 / 10,000 images, x float32 (rows, size, size) in [0, 1], y int64 labels 0..9
    (names in :data:`FASHION_MNIST_CLASSES`).

    Found where the CLI looks (``data_dir``, ``$FASTFC_DATA``, Debian's
    ``/usr/share/datasets/fashion-mnist``), else the 8x8 copy embedded in fastfc (other sizes
    need the files). With ``return_source=True`` also returns where they came from.
    """
    splits, source = _native.fashion_mnist(int(size), data_dir)
    out = tuple(splits)
    return (out, source) if return_source else out
