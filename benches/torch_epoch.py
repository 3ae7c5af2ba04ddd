#!/usr/bin/env python3
"""PyTorch eager baseline for `fastfc bench`: the same model, optimizer, batch size and data, one
training epoch + one validation pass, timed the same way (median of N epochs after a warm-up).

Usage: torch_epoch.py DATA_DIR [--threads 1] [--epochs 3] [--hidden 64,64,64,64] ...
DATA_DIR holds `fastfc data export` output. Prints one JSON line. Exits 3 when torch is absent.
"""
import json
import sys
import time

import peer_common

try:
    import numpy as np
    import torch
    import torch.nn as nn
except ImportError:
    print("torch_epoch.py: PyTorch/numpy not installed; skipped", file=sys.stderr)
    sys.exit(3)

ap = peer_common.parser()
ap.add_argument("--dropout", type=float, default=0.049)
a = ap.parse_args()

torch.set_num_threads(a.threads)
torch.manual_seed(0)
xtr, ytr, xva, yva = peer_common.load(a.data_dir)
xtr, xva = torch.from_numpy(xtr), torch.from_numpy(xva)
ytr, yva = (torch.from_numpy(y.astype(np.int64)) for y in (ytr, yva))

layers, d = [], xtr.shape[1]
for w in map(int, a.hidden.split(",")):
    layers += [nn.Linear(d, w), nn.ELU(), nn.Dropout(a.dropout)]
    d = w
layers.append(nn.Linear(d, 10))
model = nn.Sequential(*layers)
opt = torch.optim.Adam(model.parameters(), lr=a.lr, eps=1e-7)
loss_fn = nn.CrossEntropyLoss()


def epoch():
    model.train()
    perm = torch.randperm(xtr.shape[0])
    for i in range(0, xtr.shape[0], a.batch_size):
        idx = perm[i : i + a.batch_size]
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(xtr[idx]), ytr[idx])
        loss.backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        logits = model(xva)
        return (logits.argmax(1) == yva).float().mean().item()


times = []
for e in range(a.epochs + 1):
    t = time.perf_counter()
    acc = epoch()
    if e > 0:
        times.append(time.perf_counter() - t)
times.sort()
print(json.dumps({"backend": f"pytorch {torch.__version__} eager ({a.threads} threads)",
                  "epoch_seconds": times[len(times) // 2], "val_accuracy": acc}))
