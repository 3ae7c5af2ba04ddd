#!/usr/bin/env python3
"""PyTorch `torch.func` baseline for `fastfc bench --trials N`: an ensemble of N copies of the
model (different initialisations) trained together, the batched-trials peer of fastfc's cohort.
Parameters are stacked (`torch.func.stack_module_state`), one step is `vmap(grad(loss))` over the
ensemble on the same batch, and Adam (eps 1e-7) updates the stacked tensors (elementwise, so N
independent Adams). One training epoch + one validation pass of all N, timed as torch_epoch.py
(median of N epochs after a warm-up).

Usage: torch_vmap_epoch.py DATA_DIR [--models 8] [--threads 1] [--epochs 3] [--hidden 64,64,64,64]
Prints one JSON line (epoch_seconds for the whole ensemble, model_epoch_seconds per model).
Exits 3 when torch is absent.
"""
import copy
import json
import sys
import time

import peer_common

try:
    import numpy as np
    import torch
    import torch.nn as nn
    from torch.func import functional_call, grad_and_value, stack_module_state, vmap
except ImportError:
    print("torch_vmap_epoch.py: PyTorch/numpy not installed; skipped", file=sys.stderr)
    sys.exit(3)

ap = peer_common.parser()
ap.add_argument("--models", type=int, default=8)
a = ap.parse_args()

torch.set_num_threads(a.threads)
torch.manual_seed(0)
xtr, ytr, xva, yva = peer_common.load(a.data_dir)
xtr, xva = torch.from_numpy(xtr), torch.from_numpy(xva)
ytr, yva = (torch.from_numpy(y.astype(np.int64)) for y in (ytr, yva))


def make():
    layers, d = [], xtr.shape[1]
    for w in map(int, a.hidden.split(",")):
        layers += [nn.Linear(d, w), nn.ELU()]
        d = w
    layers.append(nn.Linear(d, 10))
    return nn.Sequential(*layers)


models = [make() for _ in range(a.models)]
params, buffers = stack_module_state(models)
base = copy.deepcopy(models[0]).to("meta")
leaves = [p for p in params.values()]
opt = torch.optim.Adam(leaves, lr=a.lr, eps=1e-7)
names = list(params.keys())


def loss_of(p, b, x, y):
    return nn.functional.cross_entropy(functional_call(base, (p, b), (x,)), y)


step = vmap(grad_and_value(loss_of), in_dims=(0, 0, None, None))
logits_of = vmap(lambda p, b, x: functional_call(base, (p, b), (x,)), in_dims=(0, 0, None))


def epoch():
    perm = torch.randperm(xtr.shape[0])
    for i in range(0, xtr.shape[0], a.batch_size):
        idx = perm[i : i + a.batch_size]
        p = {n: t.detach() for n, t in params.items()}
        grads, _ = step(p, buffers, xtr[idx], ytr[idx])
        for n, t in params.items():
            t.grad = grads[n]
        opt.step()
    with torch.no_grad():
        logits = logits_of(params, buffers, xva)
        return (logits.argmax(2) == yva).float().mean().item()


times = []
for e in range(a.epochs + 1):
    t = time.perf_counter()
    acc = epoch()
    if e > 0:
        times.append(time.perf_counter() - t)
times.sort()
med = times[len(times) // 2]
print(json.dumps({"backend": f"pytorch {torch.__version__} torch.func vmap ({a.threads} threads)",
                  "models": a.models, "epoch_seconds": med, "model_epoch_seconds": med / a.models,
                  "val_accuracy": acc}))
