"""The seed's notebook, rerun: examples/fashion_mnist_search.ipynb executes end to end on the
embedded data and its outputs say what the assignment asked."""

import json
import os

import nbformat
from nbclient import NotebookClient

from conftest import ROOT


def test_notebook_runs_the_whole_study(tmp_path, monkeypatch):
    monkeypatch.setenv("FASTFC_NO_SYSTEM_DATA", "1")  # the embedded 8x8 copy, as a fresh machine has
    nb = nbformat.read(os.path.join(ROOT, "examples", "fashion_mnist_search.ipynb"), as_version=4)
    NotebookClient(nb, timeout=900, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.output_type == "error"]
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    check = json.loads(next(l for l in text.splitlines() if l.startswith("CHECK "))[6:])
    assert check["random_runs"] == 108 and check["hyperband_runs"] == 60
    for k in ("random_val", "hyperband_val"):
        assert 0.8 < check[k] < 1.0, check
    for k in ("random_test", "hyperband_test"):
        assert 0.75 < check[k] < 1.0, check
    assert check["hyperband_seconds"] < check["random_seconds"]
    assert any("image/png" in o.get("data", {}) for o in outputs)
    # The studies are on disk for fastfc report / load_study.
    assert (tmp_path / "runs" / "notebook-random" / "summary.json").exists()
    assert (tmp_path / "convergence.png").stat().st_size > 10_000
