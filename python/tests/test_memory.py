"""Peak memory of a search on 1,000,000 x 100 float32 input: the Python call holds no more than
the caller's own array above what the CLI holds for the same search."""

import os
import subprocess
import sys
import textwrap

import numpy as np

from conftest import run_cli

ROWS, COLS = 1_000_000, 100

MAKE = """
import numpy as np
rng = np.random.default_rng(0)
x = rng.standard_normal((ROWS, COLS), dtype=np.float32)
y = (x[:, 0] > 0).astype(np.int64) + 2 * (x[:, 1] > 0)
"""

PY = """
import resource, json, sys
import fastfc, pandas, sklearn  # the interpreter's footprint, before the data exists
def rss_kb():
    with open("/proc/self/status") as f:
        return next(int(l.split()[1]) for l in f if l.startswith("VmRSS"))
base = rss_kb()
{make}
before = rss_kb()
fastfc.search(x, y, validation_split=0.2, strategy="random", trials=1, epochs=1, batch_size=4096,
              space={{"layers": [1], "units": [16], "dropout": [0.0], "learning_rate": [0.002],
                      "activation": ["relu"], "optimizer": ["adam"]}},
              device="cpu", out=sys.argv[1], verbose=0)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({{"base": base, "before": before, "peak": peak, "x": x.nbytes // 1024}}))
"""

SAVE = """
import sys
{make}
np.savez(sys.argv[1], x_train=x, y_train=y)
"""


def test_peak_memory_at_most_one_copy_above_the_cli(tmp_path, fastfc_bin):
    make = textwrap.dedent(MAKE).replace("ROWS", str(ROWS)).replace("COLS", str(COLS))
    npz = tmp_path / "big.npz"
    subprocess.run([sys.executable, "-c", SAVE.format(make=make), str(npz)], check=True)
    space = tmp_path / "space.toml"
    space.write_text('[layers]\nchoice = [1]\n[units]\nchoice = [16]\n[dropout]\nchoice = [0.0]\n'
                     '[learning_rate]\nchoice = [0.002]\n[activation]\nchoice = ["relu"]\n'
                     '[optimizer]\nchoice = ["adam"]\n')
    cli = subprocess.run(
        ["/usr/bin/env", sys.executable, "-c",
         "import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True, "
         "stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL); "
         "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)",
         fastfc_bin, "search", "--data", str(npz), "--strategy", "random", "--trials", "1",
         "--epochs", "1", "--batch-size", "4096", "--val-fraction", "0.2", "--test-fraction", "0.01",
         "--space", str(space), "--device", "cpu", "--out", str(tmp_path / "cli")],
        check=True, capture_output=True, text=True)
    cli_peak = int(cli.stdout.strip())
    py = subprocess.run([sys.executable, "-c", PY.format(make=make), str(tmp_path / "py")],
                        check=True, capture_output=True, text=True)
    import json
    m = json.loads(py.stdout.strip().splitlines()[-1])
    # The interpreter's own footprint (numpy, pandas, scikit-learn, fastfc loaded) is not data.
    engine_and_array = m["peak"] - m["base"]
    print(f"CLI peak {cli_peak / 1024:.0f} MiB; Python peak {m['peak'] / 1024:.0f} MiB of which "
          f"interpreter {m['base'] / 1024:.0f} MiB, the caller's array {m['x'] / 1024:.0f} MiB")
    assert engine_and_array <= cli_peak + m["x"], (engine_and_array, cli_peak, m["x"])
