#!/usr/bin/env python3
"""scikit-learn's MLPClassifier, the CPU user's usual choice, for `fastfc bench`: the same widths,
batch size, Adam (its epsilon is 1e-8) and data, one epoch (`partial_fit` over the training
split in its own batches) + one validation pass, timed as torch_epoch.py. MLPClassifier has no
elu and no dropout: compare with `fastfc bench --activation relu --dropout 0`.

Usage: sklearn_epoch.py DATA_DIR [--threads 1] [--epochs 3] [--hidden 64,64,64,64]
Prints one JSON line. Exits 3 when scikit-learn is absent.
"""
import json
import os
import sys
import time

import peer_common

a = peer_common.parser().parse_args()
for v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[v] = str(a.threads)

try:
    import numpy as np
    import sklearn
    from sklearn.neural_network import MLPClassifier
    from threadpoolctl import threadpool_limits
except ImportError:
    print("sklearn_epoch.py: scikit-learn not installed; skipped", file=sys.stderr)
    sys.exit(3)

xtr, ytr, xva, yva = peer_common.load(a.data_dir)
clf = MLPClassifier(hidden_layer_sizes=tuple(map(int, a.hidden.split(","))), activation="relu",
                    solver="adam", batch_size=a.batch_size, learning_rate_init=a.lr,
                    shuffle=True, random_state=0)
classes = np.unique(ytr)
times = []
with threadpool_limits(a.threads):
    for e in range(a.epochs + 1):
        t = time.perf_counter()
        clf.partial_fit(xtr, ytr, classes=classes)  # one pass over xtr in batches of batch_size
        acc = float((clf.predict(xva) == yva).mean())
        if e > 0:
            times.append(time.perf_counter() - t)
times.sort()
print(json.dumps({"backend": f"scikit-learn {sklearn.__version__} MLPClassifier ({a.threads} threads)",
                  "epoch_seconds": times[len(times) // 2], "val_accuracy": acc}))
