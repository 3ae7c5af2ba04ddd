"""``fastfc.search`` and the study it leaves: one call trains the strategy's runs on the engine
and returns a :class:`Study` over the study folder (the CLI's files: ``journal.jsonl``,
``results.csv``, ``summary.json``, ``best/``), so a study made in Python opens with
``fastfc report`` and a CLI study opens with :func:`load_study`."""

from __future__ import annotations

import json
import os
from typing import Any, Callable, Dict, Iterable, List, Optional

import numpy as np
import pandas as pd

from . import _data, _native
from ._progress import Progress
from ._space import SpaceLike, space_text
from .model import Model, load_model

STRATEGIES = ("random", "grid", "hyperband", "tpe", "bohb", "asha")

# results.csv's columns and their dtypes (nullable integers where a strategy leaves them empty).
RESULT_DTYPES = {
    "run_id": "int64", "trial_id": "int64", "hidden": "string", "layers": "int64",
    "units": "int64", "dropout": "float64", "learning_rate": "float64",
    "activation": "string", "optimizer": "string",
    # The knobs (issue #26): empty where the space did not search them or the trial's optimizer
    # or schedule does not have them.
    "batch_size": "Int64", "beta_1": "float64", "beta_2": "float64", "momentum": "float64",
    "nesterov": "boolean", "rho": "float64", "weight_decay": "float64", "schedule": "string",
    "warmup_epochs": "float64", "decay_epochs": "float64", "decay_rate": "float64",
    "epochs": "int64",
    "start_epoch": "int64", "best_epoch": "int64", "val_loss": "float64",
    "val_accuracy": "float64", "status": "string", "seconds": "float64",
    "study_seconds": "float64", "study_epochs": "int64", "iteration": "Int64",
    "bracket": "Int64", "round": "Int64", "resumed_from_run": "Int64",
}


def read_results(path: str) -> pd.DataFrame:
    """``results.csv`` as a DataFrame with fixed dtypes."""
    df = pd.read_csv(path, dtype={k: v for k, v in RESULT_DTYPES.items() if v == "string"},
                     keep_default_na=True)
    for col, dt in RESULT_DTYPES.items():
        if col in df.columns and dt != "string":
            df[col] = df[col].astype(dt)
    return df


class Study:
    """A finished (or interrupted) study folder.

    - ``results``: one row per run (results.csv's columns).
    - ``best_params``, ``best_value`` (validation accuracy), ``best_run``, ``best_model``.
    - ``history()``: one row per run and epoch (the journal's learning curves).
    - ``evaluate(x_test, y_test)``: the best model scored on your held-out test set.
    """

    def __init__(self, path, classes: Optional[np.ndarray] = None):
        self.path = os.fspath(path)
        self._classes = classes
        self._model: Optional[Model] = None
        summary = os.path.join(self.path, "summary.json")
        if not os.path.exists(os.path.join(self.path, "study.json")):
            raise FileNotFoundError(f"{self.path}: no study here (no study.json)")
        with open(os.path.join(self.path, "study.json"), encoding="utf-8") as f:
            self.config: Dict[str, Any] = json.load(f)
        self.summary: Optional[Dict[str, Any]] = None
        if os.path.exists(summary):
            with open(summary, encoding="utf-8") as f:
                self.summary = json.load(f)

    @property
    def strategy(self) -> str:
        return self.config["strategy"]

    @property
    def results(self) -> pd.DataFrame:
        p = os.path.join(self.path, "results.csv")
        if not os.path.exists(p):
            return pd.DataFrame({k: pd.Series(dtype=v) for k, v in RESULT_DTYPES.items()})
        return read_results(p)

    def _finished(self) -> Dict[str, Any]:
        if self.summary is None:
            raise ValueError(f"{self.path}: the study has not finished (no summary.json); "
                             "resume it with fastfc.search(..., resume=True)")
        return self.summary

    def _journal(self) -> List[Dict[str, Any]]:
        p = os.path.join(self.path, "journal.jsonl")
        if not os.path.exists(p):
            return []
        with open(p, encoding="utf-8") as f:
            return [json.loads(line) for line in f if line.strip()]

    @property
    def best_run(self) -> Dict[str, Any]:
        """The best run: run_id, trial_id, config, val_accuracy, val_loss, epochs. While the
        study runs (in a callback) or after an interruption: the best of the runs journaled
        so far, ranked as the engine ranks them (validation accuracy, then loss, then run id)."""
        if self.summary is not None:
            return self.summary["best"]
        runs = self._journal()
        if not runs:
            raise ValueError(f"{self.path}: no run has finished yet")

        def key(r):
            loss = r["val_loss"]
            loss = float(loss) if isinstance(loss, (int, float)) else float("inf")
            return (-float(r["val_accuracy"]), loss, r["run_id"])
        r = min(runs, key=key)
        return {"run_id": r["run_id"], "trial_id": r["trial_id"], "config": r["hp"],
                "val_accuracy": r["val_accuracy"], "val_loss": r["val_loss"],
                "epochs": r["epochs_trained"]}

    @property
    def best_params(self) -> Dict[str, Any]:
        """The best run's hyperparameters (hidden, activation, dropout, learning_rate, optimizer,
        and the knobs the space searched that the best run has)."""
        return dict(self.best_run["config"])

    @property
    def best_value(self) -> float:
        """The best run's validation accuracy."""
        return float(self.best_run["val_accuracy"])

    @property
    def best_model(self) -> Model:
        """The chosen model (``best/``), once the study has finished."""
        if self._model is None:
            self._finished()
            m = load_model(os.path.join(self.path, "best"))
            if self._classes is not None:
                m = Model(m._m, self._classes)
            self._model = m
        return self._model

    @property
    def wall_seconds(self) -> float:
        return float(self._finished()["wall_seconds"])

    def history(self) -> pd.DataFrame:
        """Every run's epochs: run_id, trial_id, epoch, loss, accuracy, val_loss, val_accuracy."""
        rows = []
        p = os.path.join(self.path, "journal.jsonl")
        if os.path.exists(p):
            with open(p, encoding="utf-8") as f:
                for line in f:
                    if not line.strip():
                        continue
                    r = json.loads(line)
                    for e in r["history"]:
                        rows.append({"run_id": r["run_id"], "trial_id": r["trial_id"], **e})
        cols = ["run_id", "trial_id", "epoch", "loss", "accuracy", "val_loss", "val_accuracy"]
        df = pd.DataFrame(rows, columns=cols)
        for c in cols[3:]:
            df[c] = pd.to_numeric(df[c], errors="coerce").astype("float64")
        return df

    def evaluate(self, x_test, y_test) -> Dict[str, float]:
        """The best model's accuracy and loss on your test set (score it once, at the end)."""
        return self.best_model.evaluate(x_test, y_test)

    def plot(self, ax=None):
        """Best validation accuracy so far against study time (matplotlib)."""
        import matplotlib.pyplot as plt
        df = self.results.sort_values("study_seconds")
        if ax is None:
            _, ax = plt.subplots(figsize=(6, 4))
        ax.step(df["study_seconds"], df["val_accuracy"].cummax(), where="post",
                label=f"{self.strategy} ({len(df)} runs)")
        ax.set_xlabel("study time (s)")
        ax.set_ylabel("best validation accuracy so far")
        ax.grid(alpha=0.3)
        ax.legend()
        return ax

    def __repr__(self) -> str:
        if self.summary is None:
            return f"<fastfc.Study {self.strategy} in {self.path}: not finished>"
        return (f"<fastfc.Study {self.strategy} in {self.path}: {self.summary['runs']} runs, "
                f"best val_accuracy {self.best_value:.4f}>")


def load_study(path) -> Study:
    """Opens a study folder written by :func:`search` or ``fastfc search``."""
    return Study(path)


def _run_line(r: Dict[str, Any], done: int, total: int, best: float, replayed: bool) -> str:
    q = r  # the journal's record: the run request's fields, then the outcome's
    hp = q["hp"]
    br = q.get("bracket")
    hb = f" [it {br['iteration']} br {br['bracket']} rd {br['round']}]" if br else ""
    val = r["val_accuracy"]
    return (f"run {done:>4}/{total} trial {q['trial_id']:>3} {'-'.join(map(str, hp['hidden'])):<10} "
            f"{hp['activation']:<4} {hp['optimizer']:<4} drop {hp['dropout']:.3f} lr {hp['learning_rate']:.2e} "
            f"| epochs {r['epochs_trained']:>2} val_acc {float(val):.4f} {r['status']}{hb}"
            f"{' (from journal)' if replayed else ''} | best {best:.4f}")


def search(x, y, *, validation_data=None, validation_split: Optional[float] = None,
           space: SpaceLike = None, strategy: str = "hyperband", seed: int = 42,
           trials: Optional[int] = None, epochs: Optional[int] = None,
           max_epochs: Optional[int] = None, factor: Optional[int] = None,
           iterations: Optional[int] = None, min_epochs: Optional[int] = None,
           startup_trials: Optional[int] = None, ei_candidates: Optional[int] = None,
           random_fraction: Optional[float] = None, cohort_size: Optional[int] = None,
           patience: int = 3, batch_size: int = 32, scale: Optional[str] = None,
           image_size: Optional[int] = None, device: str = "auto",
           threads: Optional[int] = None, out=None, resume: bool = False,
           callbacks: Iterable[Callable[["Study", Dict[str, Any]], Any]] = (), verbose: int = 1,
           dry_run: bool = False) -> Study:
    """Searches hyperparameters of fully-connected classifiers on ``(x, y)``.

    Data: ``x`` (rows, features) or images (rows, height, width), float or integer; ``y``
    labels of any integer or string type. Validation on ``validation_data=(x_val, y_val)``, or on
    ``validation_split`` of the rows (stratified, from ``seed``; 0.2 when neither is given).
    Your test set stays yours: score it once with ``study.evaluate(x_test, y_test)``.

    Strategy: ``"hyperband"`` (``max_epochs``, ``factor``, ``iterations``), ``"random"`` and
    ``"grid"`` (``trials``, ``epochs``), ``"tpe"`` (``trials``, ``epochs``, ``startup_trials``,
    ``ei_candidates``), ``"bohb"`` (Hyperband's options, ``ei_candidates``, ``random_fraction``),
    ``"asha"`` (``trials``, ``max_epochs``, ``factor``, ``min_epochs``). An option the strategy
    does not take is refused.

    Space: a dict (see ``fastfc.uniform``/``loguniform``/``int_range``/``choice``), a path to a
    space TOML, or None for the seed notebook's space.

    The study is written to ``out`` (default ``runs/{strategy}-seed{seed}``), which must be new
    unless ``resume=True`` (then finished runs are read back, not trained again).
    ``verbose``: 0 silent, 1 a progress bar and the best run at the end, 2 also a line per
    finished run (as the CLI prints). ``callbacks`` are called as Optuna calls its callbacks,
    ``fn(study, run)``, after each finished run: the :class:`Study` so far (its ``results`` as
    of the last finished cohort) and the run (a dict: run_id, trial_id, hp, status,
    val_accuracy, val_loss, epochs_trained, history, replayed, ...: the journal's record).
    Ctrl-C (KeyboardInterrupt) stops the engine when the epoch in progress ends; every finished run is kept and
    ``resume=True`` continues. Returns a :class:`Study`.
    """
    if strategy not in STRATEGIES:
        raise ValueError(f"strategy: {strategy!r}; expected one of {', '.join(STRATEGIES)}")
    if out is None:
        out = os.path.join("runs", f"{strategy}-seed{seed}")
    out = os.fspath(out)
    if verbose is True:
        verbose = 1
    callbacks = list(callbacks)
    for cb in callbacks:
        if not callable(cb):
            raise TypeError(f"callbacks: {cb!r} is not callable")
    opts = {
        "strategy": strategy, "seed": seed, "trials": trials, "epochs": epochs,
        "max_epochs": max_epochs, "factor": factor, "iterations": iterations,
        "min_epochs": min_epochs, "startup_trials": startup_trials,
        "ei_candidates": ei_candidates, "random_fraction": random_fraction,
        "cohort_size": cohort_size, "patience": patience, "batch_size": batch_size,
        "space": space_text(space), "out": out, "resume": bool(resume), "device": device,
        "threads": threads,
    }
    for k in ("seed", "patience", "batch_size"):
        v = opts[k]
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 0 or v >= 2**64:
            raise ValueError(f"{k}: {v!r}; expected a non-negative integer")
    for k in ("trials", "epochs", "max_epochs", "factor", "iterations", "min_epochs",
              "startup_trials", "ei_candidates", "cohort_size", "threads"):
        v = opts[k]
        if v is not None and (isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 0):
            raise ValueError(f"{k}: {v!r}; expected a non-negative integer")
        if v is not None:
            opts[k] = int(v)
    for k in ("seed", "patience", "batch_size"):
        opts[k] = int(opts[k])
    if random_fraction is not None:
        opts["random_fraction"] = float(random_fraction)
    if dry_run:
        for line in _native.plan(json.dumps(opts)):
            print(line)
        return None
    data, classes = _data.make(x, y, validation_data=validation_data,
                               validation_split=validation_split, scale=scale,
                               image_size=image_size, seed=seed)
    progress = Progress(verbose)
    state = {"done": 0, "total": 0, "best": 0.0, "per_epoch": 0, "study": None}

    def on_event(kind, *args):
        if kind == "steps":
            progress.steps(args[0])
        elif kind == "start":
            header, runs, steps, per_epoch = args
            state["total"], state["per_epoch"] = runs, per_epoch
            progress.start(header, steps)
        elif kind == "run":
            r = json.loads(args[0])
            replayed = bool(args[1])
            state["done"] += 1
            v = r["val_accuracy"]
            if isinstance(v, (int, float)) and v > state["best"]:
                state["best"] = float(v)
            if replayed:
                progress.steps(len(r["history"]) * state["per_epoch"])
            if verbose >= 2:
                progress.line(_run_line(r, state["done"], state["total"], state["best"], replayed))
            progress.message(f"runs {state['done']}/{state['total']} best {state['best']:.4f}")
            r["replayed"] = replayed
            if callbacks and state["study"] is None:
                state["study"] = Study(out, classes)
            for cb in callbacks:
                cb(state["study"], r)

    try:
        summary = json.loads(_native.search(data, json.dumps(opts), on_event))
    except KeyboardInterrupt:
        progress.close()
        print(f"interrupted: the finished runs are in {out}/journal.jsonl; "
              "search(..., resume=True) continues", flush=True)
        raise
    finally:
        progress.close()
    if verbose >= 1:
        b = summary["best"]
        print(f"best: run {b['run_id']} (trial {b['trial_id']}) {b['config']}: "
              f"val_accuracy {b['val_accuracy']:.4f} | {summary['runs']} runs, "
              f"{summary['epochs_trained']} epochs in {summary['wall_seconds']:.1f}s on {summary['device']}",
              flush=True)
    return Study(out, classes)
