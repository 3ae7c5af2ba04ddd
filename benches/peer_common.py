"""What the peer baselines (torch_epoch.py, torch_vmap_epoch.py, sklearn_epoch.py) share: the
command line every one of them takes, and the data `fastfc data export` wrote, as numpy arrays.
Imports nothing heavy, so a script can set thread variables before numpy loads."""
import argparse


def parser(doc=None):
    """DATA_DIR, --threads, --epochs, --hidden, --lr and --batch-size; add a script's own."""
    ap = argparse.ArgumentParser(description=doc)
    ap.add_argument("data_dir")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--hidden", default="64,64,64,64")
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--batch-size", type=int, default=32)
    return ap


def load(data_dir):
    """(x_train, y_train, x_val, y_val) from `fastfc data export --out DATA_DIR`."""
    import numpy as np

    return tuple(np.load(f"{data_dir}/{n}.npy") for n in ("train_x", "train_y", "val_x", "val_y"))
