"""Fixtures for the Python package's tests: real data (scikit-learn's bundled digits and iris,
fastfc's embedded Fashion-MNIST), the CLI binary for side-by-side checks."""

import os
import shutil
import subprocess

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# Timing and where-it-ran columns: everything else in results.csv is a function of the data,
# the settings and the seed.
TIMING = ["seconds", "study_seconds"]


@pytest.fixture(scope="session")
def digits():
    """scikit-learn's digits (1797 x 64, 10 classes), split 60/20/20 stratified."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split
    x, y = load_digits(return_X_y=True)
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=0.2, random_state=0, stratify=y)
    x_tr, x_va, y_tr, y_va = train_test_split(x_tr, y_tr, test_size=0.25, random_state=0, stratify=y_tr)
    return x_tr, y_tr, x_va, y_va, x_te, y_te


@pytest.fixture(scope="session")
def iris():
    from sklearn.datasets import load_iris
    return load_iris(return_X_y=True)


@pytest.fixture(scope="session")
def fastfc_bin():
    """The CLI built from this checkout (FASTFC_BIN, else target/release/fastfc)."""
    p = os.environ.get("FASTFC_BIN") or os.path.join(ROOT, "target", "release", "fastfc")
    if not os.path.exists(p):
        pytest.fail(f"{p}: no fastfc binary; build it with `cargo build --release` or set FASTFC_BIN")
    return p


def run_cli(bin_path, *args, env=None, check=True):
    e = dict(os.environ, FASTFC_NO_PROGRESS="1")
    e.update(env or {})
    r = subprocess.run([bin_path, *args], capture_output=True, text=True, env=e)
    if check and r.returncode != 0:
        raise AssertionError(f"fastfc {' '.join(args)} failed ({r.returncode}):\n{r.stderr}")
    return r


def same_results(a, b):
    """Two results tables equal but for timing columns."""
    import pandas as pd
    a = a.drop(columns=TIMING).sort_values("run_id").reset_index(drop=True)
    b = b.drop(columns=TIMING).sort_values("run_id").reset_index(drop=True)
    pd.testing.assert_frame_equal(a, b, check_exact=True)


@pytest.fixture
def tmp_cwd(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


__all__ = ["ROOT", "TIMING", "run_cli", "same_results", "shutil", "np"]
