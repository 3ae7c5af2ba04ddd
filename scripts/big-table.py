"""Writes the 1,000,000 x 100 table of BENCHMARKS.md ("Your own data"), as a folder of .npy files
(x_train float32, y_train int64) and as a CSV (`label` last, 4 decimals):

    python scripts/big-table.py OUT_DIR     # OUT_DIR/npy/, OUT_DIR/big.csv (~1.2 GB in all)

Ten classes, each row's own class feature raised by 2 so the table is learnable.
"""
import os
import sys

import numpy as np
import pandas as pd

out = sys.argv[1]
rng = np.random.default_rng(0)
n, d, k = 1_000_000, 100, 10
y = rng.integers(0, k, n)
x = rng.standard_normal((n, d), dtype=np.float32)
x[np.arange(n), y] += 2.0
os.makedirs(os.path.join(out, "npy"), exist_ok=True)
np.save(os.path.join(out, "npy", "x_train.npy"), x)
np.save(os.path.join(out, "npy", "y_train.npy"), y)
df = pd.DataFrame(x, columns=[f"f{j}" for j in range(d)])
df["label"] = y
df.to_csv(os.path.join(out, "big.csv"), index=False, float_format="%.4f")
