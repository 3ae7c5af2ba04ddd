"""Writes scikit-learn's bundled data sets (they ship inside its wheel: no download) in the
formats fastfc reads, for the tests and benchmarks that need real data nobody here made:

    python scripts/sklearn-data.py OUT_DIR

OUT_DIR/digits.npz        x_train (1797, 64) float64 0..16, y_train int64 (fastfc draws val/test)
OUT_DIR/breast_cancer.csv 30 numeric columns + `target` ("malignant"/"benign")
OUT_DIR/wine.csv          13 numeric columns + `target` (0, 1, 2), the last column
OUT_DIR/iris.csv          4 numeric columns + `species` (strings)
"""
import os
import sys

import numpy as np
from sklearn import datasets

out = sys.argv[1]
os.makedirs(out, exist_ok=True)

d = datasets.load_digits()
np.savez(os.path.join(out, "digits.npz"), x_train=d.data, y_train=d.target)

b = datasets.load_breast_cancer(as_frame=True)
f = b.frame.copy()
f["target"] = [b.target_names[t] for t in b.target]
f.to_csv(os.path.join(out, "breast_cancer.csv"), index=False)

w = datasets.load_wine(as_frame=True)
w.frame.to_csv(os.path.join(out, "wine.csv"), index=False)

i = datasets.load_iris(as_frame=True)
f = i.frame.drop(columns="target")
f["species"] = [i.target_names[t] for t in i.target]
f.to_csv(os.path.join(out, "iris.csv"), index=False)
print(f"wrote {out}/{{digits.npz,breast_cancer.csv,wine.csv,iris.csv}}")
