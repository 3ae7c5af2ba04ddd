"""Writes examples/fashion_mnist_search.ipynb (the seed assignment's study, redone with fastfc).
Run it after editing the cells here; `python/tests/test_notebook.py` executes the notebook."""

import sys

import nbformat as nbf

md, code = nbf.v4.new_markdown_cell, nbf.v4.new_code_cell

cells = [
    md("""# Hyperparameter search on Fashion-MNIST 8×8, redone with fastfc

The assignment this project started from searched fully-connected networks on Fashion-MNIST
downsampled to 8×8 with Keras and Keras Tuner on a T4: **108 random configurations took about
45 minutes, Hyperband 19 minutes**. Its question: *does Hyperband converge faster than random
search, and is it better?*

This notebook runs the same two studies with `fastfc` (in-process, on this machine's CPU or GPU)
and answers it with a table and a plot.

**The split is leak-free.** The course code validated on training images; here the networks
train on training images 0–50,000, are selected on images 50,000–60,000 (validation), and the
10,000 test images are scored **once**, for the model each study chose."""),
    code("""import time
import numpy as np
import pandas as pd
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
import fastfc

(x_train, y_train), (x_val, y_val), (x_test, y_test), = fastfc.datasets.fashion_mnist(size=8)
print(f"train {x_train.shape}, validation {x_val.shape}, test {x_test.shape}, pixels in "
      f"[{x_train.min():.1f}, {x_train.max():.1f}], classes {fastfc.datasets.FASHION_MNIST_CLASSES}")
print(fastfc.devices())"""),
    md("""## The seed's search space
2–4 hidden layers of one width (32, 48 or 64 units), dropout U(0, 0.4), learning rate
U(5e-4, 2.5e-3), six activations, Adam or Lion; batch 32, early stopping (patience 3) keeping the
best epoch's weights, as in the assignment."""),
    code("""space = {
    "layers": [2, 3, 4],
    "units": [32, 48, 64],
    "dropout": (0.0, 0.4),
    "learning_rate": (5e-4, 2.5e-3),
    "activation": ["elu", "celu", "gelu", "relu", "selu", "silu"],
    "optimizer": ["adam", "lion"],
}
common = dict(validation_data=(x_val, y_val), space=space, seed=42, batch_size=32, patience=3,
              resume=True)  # resume: rerunning a cell reads the finished study back"""),
    md("## Random search: 108 configurations × up to 10 epochs"),
    code("""t = time.perf_counter()
random_study = fastfc.search(x_train, y_train, strategy="random", trials=108, epochs=10,
                             out="runs/notebook-random", **common)
random_time = time.perf_counter() - t
random_study.results.sort_values("val_accuracy", ascending=False).head(10)"""),
    md("## Hyperband: Keras Tuner's schedule (max_epochs 10, factor 3, 2 iterations)"),
    code("""t = time.perf_counter()
hb_study = fastfc.search(x_train, y_train, strategy="hyperband", max_epochs=10, factor=3,
                         iterations=2, out="runs/notebook-hyperband", **common)
hb_time = time.perf_counter() - t
hb_study.results.sort_values("val_accuracy", ascending=False).head(10)"""),
    md("""## The comparison
Each study's chosen model is scored once on the test set. The Keras rows are the assignment's
own figures (one T4).

A detail that makes this a fair, paired comparison: random search and Hyperband both draw trial
*i*'s configuration from the study seed and *i* alone, so both studies start from the same
configurations; they differ only in how they spend epochs on them (random search gives every
configuration 10 epochs, Hyperband gives most of them 2 or 4 and only the promising ones 10)."""),
    code("""rows = []
for name, s in [("random", random_study), ("hyperband", hb_study)]:
    test = s.evaluate(x_test, y_test)  # the one look at the test set, for the chosen model
    rows.append({"tool": "fastfc", "strategy": name, "runs": len(s.results),
                 "epochs trained": int(s.results["epochs"].sum() - s.results["start_epoch"].sum()),
                 "wall seconds": round(s.wall_seconds, 1),
                 "best val_accuracy": round(s.best_value, 4),
                 "test accuracy": round(test["accuracy"], 4), "best config": s.best_params})
rows.append({"tool": "Keras (seed)", "strategy": "random", "runs": 108, "wall seconds": 45 * 60,
             "best val_accuracy": 0.8597, "test accuracy": 0.7974})
rows.append({"tool": "Keras Tuner (seed)", "strategy": "hyperband", "runs": 60,
             "wall seconds": 19 * 60 + 24, "best val_accuracy": 0.8632, "test accuracy": 0.8553})
comparison = pd.DataFrame(rows)
comparison"""),
    md("""## Does Hyperband converge faster?
Best validation accuracy found so far against the study's own clock."""),
    code("""fig, ax = plt.subplots(figsize=(7, 4))
random_study.plot(ax=ax)
hb_study.plot(ax=ax)
ax.set_title("Fashion-MNIST 8x8: best validation accuracy so far")
fig.tight_layout()
fig.savefig("convergence.png", dpi=100)
from IPython.display import Image, display
display(Image("convergence.png"))"""),
    md("""## What mattered
Mean and best validation accuracy of the random study's runs by each choice, and the rank
correlation of the continuous ones with validation accuracy."""),
    code("""df = random_study.results
tables = {p: df.groupby(p)["val_accuracy"].agg(["mean", "max", "count"]).round(4)
          for p in ["optimizer", "activation", "layers", "units"]}
for p, t in tables.items():
    print(t.sort_values("mean", ascending=False), "\\n")
print(df[["dropout", "learning_rate", "val_accuracy"]].corr(method="spearman")["val_accuracy"].round(3))
lion = df[df.optimizer == "lion"]
print("\\nLion, learning rate above vs below the median:",
      lion.groupby(lion.learning_rate > lion.learning_rate.median())["val_accuracy"].mean().round(4).to_dict())"""),
    md("""## Answer
The cell below states it from this run's numbers (and writes them as one line for the notebook's
CI check)."""),
    code("""import json
r, h = comparison.iloc[0], comparison.iloc[1]
speed = r["wall seconds"] / max(h["wall seconds"], 1e-9)
print(f"Random search: {r['runs']} runs in {r['wall seconds']}s, best val {r['best val_accuracy']}, "
      f"test {r['test accuracy']}.")
print(f"Hyperband: {h['runs']} runs in {h['wall seconds']}s ({speed:.1f}x less time), best val "
      f"{h['best val_accuracy']}, test {h['test accuracy']}.")
print("Hyperband " + ("matched or beat" if h["best val_accuracy"] >= r["best val_accuracy"] - 0.005
                      else "fell short of") + " random search's best validation accuracy "
      f"in {100 / speed:.0f}% of its time; both ran in seconds where Keras took minutes.")
print("CHECK " + json.dumps({"random_runs": int(r["runs"]), "hyperband_runs": int(h["runs"]),
                             "random_val": float(r["best val_accuracy"]),
                             "hyperband_val": float(h["best val_accuracy"]),
                             "random_test": float(r["test accuracy"]),
                             "hyperband_test": float(h["test accuracy"]),
                             "random_seconds": float(r["wall seconds"]),
                             "hyperband_seconds": float(h["wall seconds"])}))"""),
]

nb = nbf.v4.new_notebook(cells=cells, metadata={
    "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
    "language_info": {"name": "python"}})
out = next((a for a in sys.argv[1:] if not a.startswith("--")), "examples/fashion_mnist_search.ipynb")
nbf.write(nb, out)
print("wrote", out)

if "--execute" in sys.argv:
    # Run it in a scratch folder (it writes runs/ and convergence.png) and keep the outputs, so
    # the notebook reads with its results on GitHub.
    import os
    import tempfile

    from nbclient import NotebookClient
    with tempfile.TemporaryDirectory() as d:
        NotebookClient(nb, timeout=900, kernel_name="python3",
                       resources={"metadata": {"path": d}}).execute()
    nbf.write(nb, out)
    print("executed", out, "in", os.path.basename(d))
