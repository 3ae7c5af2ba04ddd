#!/usr/bin/env python3
"""scikit-learn's usual answer on the same splits as a fastfc study: MLPClassifier tuned by
RandomizedSearchCV (30 configurations, scored on the fixed validation split through
PredefinedSplit, then refit on train only and scored once on test).

Usage: sklearn_mlp.py SPLITS_DIR [--iter 30] [--seed 42]
SPLITS_DIR holds `fastfc data export` output (already scaled as fastfc trains on it: standard
scaling fitted on the training split). Prints one JSON line.
"""
import argparse
import json
import time
import warnings

import numpy as np
from scipy.stats import loguniform, uniform
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import PredefinedSplit, RandomizedSearchCV
from sklearn.neural_network import MLPClassifier

ap = argparse.ArgumentParser()
ap.add_argument("splits")
ap.add_argument("--iter", type=int, default=30)
ap.add_argument("--seed", type=int, default=42)
a = ap.parse_args()
ld = lambda n: np.load(f"{a.splits}/{n}.npy")
xt, yt, xv, yv, xs, ys = (ld(n) for n in ["train_x", "train_y", "val_x", "val_y", "test_x", "test_y"])
x = np.concatenate([xt, xv])
y = np.concatenate([yt, yv])
fold = np.concatenate([np.full(len(yt), -1), np.zeros(len(yv))])
space = {
    "hidden_layer_sizes": [(32,) * 2, (48,) * 2, (64,) * 2, (32,) * 3, (48,) * 3, (64,) * 3, (64,) * 4],
    "activation": ["relu", "tanh", "logistic"],
    "alpha": loguniform(1e-6, 1e-2),
    "learning_rate_init": loguniform(5e-4, 1e-2),
    "batch_size": [32],
}
warnings.simplefilter("ignore", ConvergenceWarning)
t0 = time.time()
cv = RandomizedSearchCV(
    MLPClassifier(max_iter=200, early_stopping=False, random_state=a.seed),
    space, n_iter=a.iter, cv=PredefinedSplit(fold), random_state=a.seed, refit=False, n_jobs=1,
)
cv.fit(x, y)
best = MLPClassifier(max_iter=200, random_state=a.seed, **cv.best_params_).fit(xt, yt)
print(json.dumps({
    "val_accuracy": round(float(best.score(xv, yv)), 4),
    "cv_best_val_accuracy": round(float(cv.best_score_), 4),
    "test_accuracy": round(float(best.score(xs, ys)), 4),
    "configs": a.iter, "seconds": round(time.time() - t0, 1),
    "best": {k: (list(v) if isinstance(v, tuple) else v) for k, v in cv.best_params_.items()},
}))
