"""device= through the wheel: the CUDA engine via fakecuda (the real cudarc path, kernels in the
host emulator; never taken by "auto"), and the kernels a CUDA-toolchain build carries."""

import json
import os
import re
import subprocess
import sys

import fastfc

SCRIPT = """
import json, sys
import fastfc
from sklearn.datasets import load_digits
x, y = load_digits(return_X_y=True)
space = {"layers": [1, 2], "units": [16, 32], "dropout": (0.0, 0.2), "learning_rate": (1e-3, 3e-3),
         "activation": ["relu", "gelu"], "optimizer": ["adam", "lion"]}
out = {}
for device in ["cuda", "auto", "cpu"]:
    s = fastfc.search(x[:600], y[:600], validation_data=(x[600:900], y[600:900]), strategy="random",
                      trials=3, epochs=2, seed=1, device=device, space=space, verbose=0,
                      out=sys.argv[1] + "/" + device)
    out[device] = {"device": s.summary["device"], "val": s.results["val_accuracy"].tolist(),
                   "loss": s.results["val_loss"].tolist(), "best": s.best_params}
print(json.dumps(out))
"""


def test_cuda_engine_through_fakecuda_matches_the_cpu_and_auto_never_picks_it(tmp_path):
    env = dict(os.environ, FASTFC_CUDA_DRIVER="fake")
    r = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path)], env=env, capture_output=True,
                       text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert "fakecuda" in out["cuda"]["device"]
    assert out["auto"]["device"].startswith("cpu") and out["cpu"]["device"].startswith("cpu")
    # The CUDA engine's results agree with the CPU engine's (FMA and a GPU's order of sums
    # may move a loss in its last digits, never a ranking here).
    for a, b in zip(out["cuda"]["loss"], out["cpu"]["loss"]):
        assert abs(a - b) < 1e-3 * max(1.0, abs(b)), (out["cuda"], out["cpu"])
    for a, b in zip(out["cuda"]["val"], out["cpu"]["val"]):
        assert abs(a - b) <= 2 / 300, (out["cuda"], out["cpu"])
    assert out["cuda"]["best"] == out["cpu"]["best"]


def test_the_wheel_says_which_kernels_it_carries():
    report = fastfc.devices()
    m = re.search(r"kernels (\d+) compiled", report)
    assert m, report
    if os.environ.get("FASTFC_REQUIRE_KERNELS"):
        # CI builds the wheel with the CUDA 12 toolchain: a notebook GPU gets the kernels.
        assert int(m.group(1)) > 0, report
    assert "emulated executor built in" in report
