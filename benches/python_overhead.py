"""What the Python call costs over the CLI: the same search (same data, settings, seed, threads)
through `fastfc search` (the whole process: start, load the data, train, write the study, score
the test split once) and through Python doing the same work in a running interpreter
(`fastfc.datasets.fashion_mnist()`, `fastfc.search(...)`: the arrays copied in, training,
progress relayed, the Study opened; `study.evaluate(x_test, y_test)`), interleaved, N times
each; prints the medians and their ratio.

    python benches/python_overhead.py [--bin target/release/fastfc] [--repeat 5] [--strategy hyperband]

Runs on the embedded 8x8 Fashion-MNIST (FASTFC_NO_SYSTEM_DATA=1 for both), CPU engine.
"""

import argparse
import os
import shutil
import statistics
import subprocess
import tempfile
import time

os.environ["FASTFC_NO_SYSTEM_DATA"] = "1"
os.environ["FASTFC_NO_PROGRESS"] = "1"

import fastfc  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument("--bin", default="target/release/fastfc")
ap.add_argument("--repeat", type=int, default=5)
ap.add_argument("--strategy", default="hyperband", choices=["hyperband", "random"])
a = ap.parse_args()

flags = {"hyperband": ["--max-epochs", "10", "--factor", "3", "--iterations", "2"],
         "random": ["--trials", "108", "--epochs", "10"]}[a.strategy]
kw = {"hyperband": dict(max_epochs=10, factor=3, iterations=2),
      "random": dict(trials=108, epochs=10)}[a.strategy]
tmp = tempfile.mkdtemp()
import resource

cli, py, cli_study, py_study, cli_cpu, py_cpu = [], [], [], [], [], []


def cpu(who):
    r = resource.getrusage(who)
    return r.ru_utime + r.ru_stime


def study_seconds(out):
    import json
    with open(os.path.join(out, "summary.json")) as f:
        return json.load(f)["wall_seconds"]



def run_cli(i):
    out = os.path.join(tmp, f"cli{i}")
    t, c0 = time.perf_counter(), cpu(resource.RUSAGE_CHILDREN)
    subprocess.run([a.bin, "search", "--strategy", a.strategy, *flags, "--seed", "42",
                    "--device", "cpu", "--out", out], check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    cli.append(time.perf_counter() - t)
    cli_cpu.append(cpu(resource.RUSAGE_CHILDREN) - c0)
    cli_study.append(study_seconds(out))


def run_py(i):
    out = os.path.join(tmp, f"py{i}")
    t, c0 = time.perf_counter(), cpu(resource.RUSAGE_SELF)
    (x, y), (xv, yv), (xt, yt) = fastfc.datasets.fashion_mnist()
    study = fastfc.search(x, y, validation_data=(xv, yv), strategy=a.strategy, seed=42,
                          device="cpu", out=out, verbose=0, **kw)
    study.evaluate(xt, yt)
    py.append(time.perf_counter() - t)
    py_cpu.append(cpu(resource.RUSAGE_SELF) - c0)
    py_study.append(study_seconds(out))


# Interleaved, the order swapped every round, so drift in the machine's speed falls on both.
for i in range(a.repeat):
    for f in ((run_cli, run_py) if i % 2 == 0 else (run_py, run_cli)):
        f(i)
    print(f"run {i + 1}: CLI {cli[-1]:.2f}s (study {cli_study[-1]:.2f}s)  "
          f"Python {py[-1]:.2f}s (study {py_study[-1]:.2f}s)", flush=True)
shutil.rmtree(tmp)
c, p = statistics.median(cli), statistics.median(py)
print(f"{a.strategy}: CLI median {c:.2f}s, Python median {p:.2f}s over {a.repeat} interleaved runs: "
      f"Python/CLI = {p / c:.3f} ({100 * (p / c - 1):+.1f}%)")
cc, pc = statistics.median(cli_cpu), statistics.median(py_cpu)
print(f"  CPU time (user + sys): CLI median {cc:.2f}s, Python median {pc:.2f}s: Python/CLI = "
      f"{pc / cc:.3f} ({100 * (pc / cc - 1):+.1f}%)")
print(f"  spread (min..max wall): CLI {min(cli):.2f}..{max(cli):.2f}s, Python {min(py):.2f}..{max(py):.2f}s")
cs, ps = statistics.median(cli_study), statistics.median(py_study)
print(f"  the study's own clock (training): CLI {cs:.2f}s, Python {ps:.2f}s; outside it: CLI "
      f"{c - cs:.2f}s (process start, data load, best model, test score), Python {p - ps:.2f}s "
      "(data load, arrays in, best model, Study opened, test score)")
