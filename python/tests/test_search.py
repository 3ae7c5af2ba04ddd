"""fastfc.search, Study, Model and datasets against the built wheel, on real data."""

import json
import os
import pickle

import numpy as np
import pandas as pd
import pytest

import fastfc
from fastfc.study import RESULT_DTYPES
from conftest import run_cli, same_results

SMALL = {"layers": [1, 2], "units": [16, 32], "dropout": (0.0, 0.2),
         "learning_rate": fastfc.loguniform(1e-3, 5e-3), "activation": ["relu", "elu"],
         "optimizer": ["adam", "lion"]}

# Each strategy with a budget of seconds on digits.
BUDGETS = {
    "random": dict(trials=4, epochs=2),
    "grid": dict(epochs=1, space={"layers": [1], "units": [16, 32], "dropout": [0.0],
                                  "learning_rate": [0.002], "activation": ["relu"],
                                  "optimizer": ["adam", "lion"]}),
    "hyperband": dict(max_epochs=3, factor=3, iterations=1),
    "tpe": dict(trials=6, epochs=2, startup_trials=3, ei_candidates=8),
    "bohb": dict(max_epochs=3, factor=3, iterations=1, ei_candidates=8, random_fraction=0.5),
    "asha": dict(trials=6, max_epochs=3, factor=3, min_epochs=1),
}


def _search(d, out, **kw):
    x_tr, y_tr, x_va, y_va = d[:4]
    kw.setdefault("space", SMALL)
    kw.setdefault("device", "cpu")
    kw.setdefault("verbose", 0)
    return fastfc.search(x_tr, y_tr, validation_data=(x_va, y_va), out=str(out), **kw)


@pytest.mark.parametrize("strategy", sorted(BUDGETS))
def test_every_strategy_gives_results_and_a_model(digits, tmp_path, strategy):
    study = _search(digits, tmp_path / strategy, strategy=strategy, seed=7, **BUDGETS[strategy])
    df = study.results
    assert list(df.columns) == list(RESULT_DTYPES)
    assert {c: str(t) for c, t in df.dtypes.items()} == RESULT_DTYPES
    assert len(df) == study.summary["runs"] > 0
    assert set(df["status"]) <= {"complete", "early_stopped", "diverged", "failed"}
    best = df.sort_values(["val_accuracy", "val_loss", "run_id"], ascending=[False, True, True]).iloc[0]
    assert study.best_value == pytest.approx(best["val_accuracy"], abs=0)
    assert set(study.best_params) == {"hidden", "activation", "dropout", "learning_rate", "optimizer"}
    assert study.best_params["hidden"] == [int(w) for w in best["hidden"].split("-")]
    x_te, y_te = digits[4], digits[5]
    m = study.best_model
    p = m.predict_proba(x_te)
    assert p.shape == (len(x_te), 10) and p.dtype == np.float32
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-5)
    pred = m.predict(x_te)
    assert pred.dtype == y_te.dtype and set(pred) <= set(range(10))
    assert m.score(x_te, y_te) == pytest.approx(np.mean(pred == y_te))
    # The test split is the caller's: the study never scored one.
    assert study.summary["test_accuracy"] is None
    ev = study.evaluate(x_te, y_te)
    assert ev["accuracy"] == pytest.approx(m.score(x_te, y_te))
    assert study.history()["run_id"].nunique() == len(df)


def test_learns_digits(digits, tmp_path):
    study = _search(digits, tmp_path / "r", strategy="random", trials=2, epochs=8, seed=1,
                    space={"layers": [2], "units": [64], "dropout": [0.0], "learning_rate": [0.002],
                           "activation": ["relu", "elu"], "optimizer": ["adam"]})
    assert study.best_value > 0.9
    assert study.best_model.score(digits[4], digits[5]) > 0.9


def test_same_results_as_the_cli_on_the_same_arrays(digits, tmp_path, fastfc_bin):
    x_tr, y_tr, x_va, y_va, x_te, y_te = digits
    npz = tmp_path / "digits.npz"
    np.savez(npz, x_train=x_tr, y_train=y_tr, x_val=x_va, y_val=y_va, x_test=x_te, y_test=y_te)
    space = tmp_path / "space.toml"
    space.write_text(fastfc.to_toml(SMALL))
    for strategy, flags, kw in [
        ("random", ["--trials", "5", "--epochs", "3"], dict(trials=5, epochs=3)),
        ("hyperband", ["--max-epochs", "3", "--iterations", "1"], dict(max_epochs=3, iterations=1)),
    ]:
        cli = tmp_path / f"cli-{strategy}"
        run_cli(fastfc_bin, "search", "--data", str(npz), "--strategy", strategy, "--seed", "3",
                "--space", str(space), "--device", "cpu", "--out", str(cli), *flags)
        py = fastfc.search(x_tr, y_tr, validation_data=(x_va, y_va), strategy=strategy, seed=3,
                           space=str(space), device="cpu", out=str(tmp_path / f"py-{strategy}"),
                           verbose=0, **kw)
        c = fastfc.load_study(cli)
        same_results(py.results, c.results)
        assert py.best_params == c.best_params
        # The CLI scored its chosen model on the test split once; Python's is the same model.
        assert py.evaluate(x_te, y_te)["accuracy"] == pytest.approx(c.summary["test_accuracy"], abs=1e-12)


def test_same_results_as_the_cli_on_fashion_mnist(tmp_path, fastfc_bin, monkeypatch):
    monkeypatch.setenv("FASTFC_NO_SYSTEM_DATA", "1")
    (x_tr, y_tr), (x_va, y_va), (x_te, y_te) = fastfc.datasets.fashion_mnist()
    cli = tmp_path / "cli"
    run_cli(fastfc_bin, "search", "--strategy", "random", "--trials", "3", "--epochs", "1",
            "--seed", "42", "--device", "cpu", "--out", str(cli), env={"FASTFC_NO_SYSTEM_DATA": "1"})
    py = fastfc.search(x_tr, y_tr, validation_data=(x_va, y_va), strategy="random", trials=3,
                       epochs=1, seed=42, device="cpu", out=str(tmp_path / "py"), verbose=0)
    same_results(py.results, fastfc.load_study(cli).results)
    # The CLI scored its chosen model once on the test split; Python's is the same model.
    cli_summary = json.loads((cli / "summary.json").read_text())
    assert py.best_model.score(x_te, y_te) == pytest.approx(cli_summary["test_accuracy"], abs=1e-12)


def test_fashion_mnist_splits():
    (x_tr, y_tr), (x_va, y_va), (x_te, y_te) = fastfc.datasets.fashion_mnist()
    assert x_tr.shape == (50000, 8, 8) and x_va.shape == (10000, 8, 8) and x_te.shape == (10000, 8, 8)
    assert x_tr.dtype == np.float32 and y_tr.dtype == np.int64
    assert 0.0 <= x_tr.min() and x_tr.max() <= 1.0
    assert sorted(np.unique(y_te)) == list(range(10))
    assert np.bincount(y_te).tolist() == [1000] * 10
    assert len(fastfc.datasets.FASHION_MNIST_CLASSES) == 10


def test_dtypes_and_orders_give_the_same_study(digits, tmp_path):
    x_tr, y_tr, x_va, y_va = digits[:4]
    kw = dict(strategy="random", trials=3, epochs=1, seed=5)
    ref = _search(digits, tmp_path / "ref", **kw).results
    variants = {
        "float32": (x_tr.astype(np.float32), x_va.astype(np.float32)),
        "fortran": (np.asfortranarray(x_tr), np.asfortranarray(x_va)),
        "int64": (x_tr.astype(np.int64), x_va.astype(np.int64)),  # digits are integers 0..16
        "strided": (np.repeat(x_tr, 2, axis=1)[:, ::2], np.repeat(x_va, 2, axis=1)[:, ::2]),
        "pandas": (pd.DataFrame(x_tr), pd.DataFrame(x_va)),
    }
    for name, (a, b) in variants.items():
        got = fastfc.search(a, y_tr, validation_data=(b, y_va), out=str(tmp_path / name),
                            verbose=0, device="cpu", space=SMALL, **kw).results
        same_results(got, ref)


def test_string_labels_come_back_as_strings(iris, tmp_path):
    x, y = iris
    names = np.array(["setosa", "versicolor", "virginica"])[y]
    study = fastfc.search(x, names, validation_split=0.3, strategy="random", trials=2, epochs=2,
                          out=str(tmp_path / "s"), verbose=0, device="cpu", space=SMALL)
    pred = study.best_model.predict(x[:10])
    assert pred.dtype.kind == "U" and set(pred) <= set(names)
    assert list(study.best_model.classes_) == ["setosa", "versicolor", "virginica"]
    # Reloaded from disk, the classes are the same strings.
    assert list(fastfc.load_study(tmp_path / "s").best_model.classes_) == list(study.best_model.classes_)


def test_validation_split_is_stratified_and_seeded(iris, tmp_path):
    x, y = iris
    a = fastfc.search(x, y, validation_split=0.2, strategy="random", trials=2, epochs=1, seed=3,
                      out=str(tmp_path / "a"), verbose=0, device="cpu", space=SMALL)
    rec = a.config["data"]
    assert rec["rows"] == [120, 30, 0]
    assert "stratified" in rec["split"] and "no test split" in rec["split"]


def test_space_dict_toml_file_and_default(digits, tmp_path):
    f = tmp_path / "space.toml"
    f.write_text(fastfc.to_toml(SMALL))
    a = _search(digits, tmp_path / "a", strategy="random", trials=3, epochs=1, space=SMALL)
    b = _search(digits, tmp_path / "b", strategy="random", trials=3, epochs=1, space=str(f))
    same_results(a.results, b.results)
    c = _search(digits, tmp_path / "c", strategy="random", trials=2, epochs=1, space=None)
    assert set(c.results["units"]) <= {32, 48, 64}
    t = fastfc.to_toml({"units": fastfc.choice([8, 16], per_layer=True), "layers": (1, 3),
                        "learning_rate": fastfc.loguniform(1e-4, 1e-2, count=3)})
    assert "per_layer = true" in t and "int = [1, 3]" in t and "loguniform = [0.0001, 0.01]" in t


def test_resume_and_refusing_an_existing_study(digits, tmp_path):
    out = tmp_path / "s"
    a = _search(digits, out, strategy="random", trials=3, epochs=1, seed=2)
    with pytest.raises(FileExistsError, match="already holds a study; pass resume=True"):
        _search(digits, out, strategy="random", trials=3, epochs=1, seed=2)
    b = _search(digits, out, strategy="random", trials=3, epochs=1, seed=2, resume=True)
    same_results(a.results, b.results)
    # Other settings or other data are refused, naming what differs.
    with pytest.raises(ValueError, match="epochs was 1, now 2"):
        _search(digits, out, strategy="random", trials=3, epochs=2, seed=2, resume=True)
    other = list(digits)
    other[0] = digits[0] + 1.0
    with pytest.raises(ValueError, match="data was"):
        _search(other, out, strategy="random", trials=3, epochs=1, seed=2, resume=True)


def test_callbacks_see_each_run_and_their_errors_stop_the_search(digits, tmp_path):
    seen, studies, rows = [], [], []

    def cb(study, run):
        seen.append(run)
        studies.append(study)
        rows.append(len(study.results))
        # The best so far, as Optuna's callbacks read it: at least this run's accuracy.
        assert study.best_value >= run["val_accuracy"]
    _search(digits, tmp_path / "a", strategy="random", trials=4, epochs=1, cohort_size=2,
            callbacks=[cb])
    assert [r["run_id"] for r in seen] == [0, 1, 2, 3]
    assert all({"hp", "val_accuracy", "history", "status", "replayed"} <= set(r) for r in seen)
    # Optuna's pattern: the study so far, whose results hold at least the cohorts finished
    # before this run's (the engine may have written this cohort's rows by then too).
    assert studies[0].path == str(tmp_path / "a") and studies[0].strategy == "random"
    assert rows[2] >= 2 and rows[3] >= 2 and len(studies[-1].results) == 4

    def boom(study, r):
        raise RuntimeError("my callback failed")
    with pytest.raises(RuntimeError, match="my callback failed"):
        _search(digits, tmp_path / "b", strategy="random", trials=4, epochs=1, cohort_size=2,
                callbacks=[boom])
    # What finished before is journaled, and resume goes on from it.
    lines = (tmp_path / "b" / "journal.jsonl").read_text().splitlines()
    assert 1 <= len(lines) < 4
    done = _search(digits, tmp_path / "b", strategy="random", trials=4, epochs=1, cohort_size=2,
                   resume=True)
    same_results(done.results, fastfc.load_study(tmp_path / "a").results)


@pytest.mark.parametrize("kwargs,exc,match", [
    (dict(strategy="hyperband", trials=5), ValueError, "trials: does not apply to strategy hyperband"),
    (dict(strategy="random", max_epochs=5), ValueError, "max_epochs: does not apply.*random, grid and TPE take epochs"),
    (dict(strategy="annealing"), ValueError, "strategy: 'annealing'"),
    (dict(strategy="random", trials=-1), ValueError, "trials: -1"),
    (dict(strategy="random", epochs=0), ValueError, "epochs: 0: expected at least 1"),
    (dict(strategy="random", space={"unitz": [32]}), ValueError, "unitz"),
    (dict(strategy="random", space={"activation": ["tanhh"]}), ValueError, "tanhh"),
    (dict(strategy="random", space={"dropout": (0.0, 0.2, 0.4)}), ValueError, "a tuple is a range"),
    (dict(strategy="random", space="no/such/space.toml"), FileNotFoundError, "no such file"),
    (dict(strategy="random", device="tpu"), ValueError, "device: `tpu`"),
    (dict(strategy="random", device="cuda"), ValueError, 'device="cuda(:0)?": .*; use device="cpu"'),
    (dict(strategy="random", batch_size=100000), ValueError, "batch_size: 100000"),
    (dict(strategy="random", scale="zscore"), ValueError, "scale"),
])
def test_bad_settings_raise_with_the_core_message(digits, tmp_path, kwargs, exc, match):
    kwargs.setdefault("space", SMALL)
    with pytest.raises(exc, match=match):
        _search(digits, tmp_path / "s", **kwargs)
    # A refused search leaves no study behind.
    assert not (tmp_path / "s" / "journal.jsonl").exists()


def test_bad_data_raises_naming_what(digits, tmp_path):
    x_tr, y_tr, x_va, y_va = digits[:4]
    run = lambda x, y, **kw: fastfc.search(x, y, strategy="random", trials=1, epochs=1, verbose=0,
                                           device="cpu", out=str(tmp_path / "s"), space=SMALL, **kw)
    with pytest.raises(ValueError, match="1-D array"):
        run(x_tr[:, 0], y_tr)
    with pytest.raises(ValueError, match="labels for the"):
        run(x_tr, y_tr[:-1])
    nan = x_tr.copy()
    nan[7, 3] = np.nan
    with pytest.raises(ValueError, match="x: row 7, column 3: NaN"):
        run(nan, y_tr)
    with pytest.raises(ValueError, match="only one class"):
        run(x_tr, np.zeros(len(y_tr), dtype=int))
    with pytest.raises(ValueError, match="validation_data\\[0\\]: rows of 63 features"):
        run(x_tr, y_tr, validation_data=(x_va[:, 1:], y_va))
    with pytest.raises(ValueError, match="not among the training labels"):
        run(x_tr, y_tr, validation_data=(x_va, y_va + 100))
    with pytest.raises(ValueError, match="continuous values"):
        run(x_tr, y_tr + 0.5)
    with pytest.raises(ValueError, match="dtype"):
        run(x_tr.astype(str), y_tr)
    with pytest.raises(ValueError, match="either validation_data or validation_split"):
        run(x_tr, y_tr, validation_data=(x_va, y_va), validation_split=0.2)
    with pytest.raises(ValueError, match="validation_split: 1.5"):
        run(x_tr, y_tr, validation_split=1.5)


def test_model_save_load_pickle_and_torch_layout(digits, tmp_path):
    study = _search(digits, tmp_path / "s", strategy="random", trials=2, epochs=2, seed=4,
                    space={**SMALL, "activation": ["relu"]})
    m = study.best_model
    x = digits[4][:50]
    f = tmp_path / "model.safetensors"
    assert m.save(f) == str(f)
    with pytest.raises(FileExistsError):
        m.save(f)
    m.save(f, overwrite=True)
    again = fastfc.load_model(f)
    np.testing.assert_array_equal(again.predict_proba(x), m.predict_proba(x))
    m.save(tmp_path / "folder")
    assert (tmp_path / "folder" / "config.json").exists()
    np.testing.assert_array_equal(fastfc.load_model(tmp_path / "folder").predict(x), m.predict(x))
    p = pickle.loads(pickle.dumps(m))
    np.testing.assert_array_equal(p.predict_proba(x), m.predict_proba(x))
    # The weights as PyTorch's nn.Linear holds them: a numpy forward pass (scaling, Linear, ReLU)
    # gives the model's probabilities.
    sd = m.state_dict()
    scaling = m.config["scaling"]
    assert scaling["kind"] == "standard"
    z = (x - np.array(scaling["shift"])) / np.array(scaling["div"])
    n = len(sd) // 2
    for i in range(n):
        z = z @ sd[f"layers.{i}.weight"].T + sd[f"layers.{i}.bias"]
        if i < n - 1:
            z = np.maximum(z, 0)
    e = np.exp(z - z.max(axis=1, keepdims=True))
    np.testing.assert_allclose(e / e.sum(axis=1, keepdims=True), m.predict_proba(x), rtol=2e-4, atol=2e-6)


def test_load_study_opens_a_cli_study(tmp_path, fastfc_bin):
    out = tmp_path / "cli"
    run_cli(fastfc_bin, "search", "--strategy", "hyperband", "--max-epochs", "2", "--iterations", "1",
            "--device", "cpu", "--out", str(out), env={"FASTFC_NO_SYSTEM_DATA": "1"})
    s = fastfc.load_study(out)
    assert s.strategy == "hyperband" and len(s.results) == s.summary["runs"]
    assert list(s.best_model.classes_) == list(fastfc.datasets.FASHION_MNIST_CLASSES)
    assert s.best_run["run_id"] == s.summary["best"]["run_id"]
    with pytest.raises(FileNotFoundError, match="no study here"):
        fastfc.load_study(tmp_path)


def test_dry_run_prints_the_plan(capsys):
    assert fastfc.search(None, None, strategy="hyperband", dry_run=True) is None
    out = capsys.readouterr().out
    assert "bracket" in out.lower()


def test_devices_and_version():
    assert "cpu" in fastfc.devices()
    assert fastfc.__version__ == "0.1.0"
    assert os.path.basename(fastfc._native.__file__).startswith("_native")


def _issue_example(x_train, y_train, x_val, y_val, out):
    """The search call of issue #24's example, as written there."""
    return fastfc.search(x_train, y_train, validation_data=(x_val, y_val),
                         space={"layers": [2, 3, 4], "units": [32, 48, 64],
                                "dropout": (0.0, 0.4), "learning_rate": fastfc.loguniform(5e-4, 2.5e-3),
                                "activation": ["elu", "gelu", "relu"], "optimizer": ["adam", "lion"]},
                         strategy="hyperband", max_epochs=10, seed=42, device="auto",
                         out=str(out), verbose=0)


def test_the_issues_example_on_digits(digits, tmp_path):
    x_train, y_train, x_val, y_val, x_test, y_test = digits
    study = _issue_example(x_train, y_train, x_val, y_val, tmp_path / "hb")
    assert len(study.results) == 60
    assert study.best_value > 0.9
    assert study.best_model.score(x_test, y_test) > 0.9
    assert study.best_model.predict_proba(x_test).shape == (len(x_test), 10)
    study.best_model.save(tmp_path / "model.safetensors")
    m = fastfc.load_model(tmp_path / "model.safetensors")
    np.testing.assert_array_equal(m.predict(x_test), study.best_model.predict(x_test))
    again = fastfc.load_study(tmp_path / "hb")
    assert again.best_params == study.best_params
    # The convergence plot draws the study.
    import matplotlib
    matplotlib.use("Agg")
    ax = study.plot()
    assert ax.get_xlabel() == "study time (s)" and len(ax.lines) == 1


def test_the_issues_example_on_the_embedded_data(tmp_path, monkeypatch):
    monkeypatch.setenv("FASTFC_NO_SYSTEM_DATA", "1")
    (x_train, y_train), (x_val, y_val), (x_test, y_test) = fastfc.datasets.fashion_mnist(size=8)
    study = _issue_example(x_train, y_train, x_val, y_val, tmp_path / "hb")
    assert len(study.results) == 60 and study.best_value > 0.85
    assert study.best_model.score(x_test, y_test) > 0.84
    assert study.best_model.predict(x_test[:5]).dtype == np.int64


def test_labels_of_narrow_and_wide_integer_types(iris, tmp_path):
    x, y = iris
    for dtype, values in [(np.int8, [-100, 0, 100]), (np.uint8, [0, 7, 255]),
                          (np.int64, [-(2**40), 3, 2**40]), (np.uint64, [0, 1, 2**63 + 5])]:
        labels = np.array(values, dtype=dtype)[y]
        s = fastfc.search(x, labels, validation_split=0.3, strategy="random", trials=2, epochs=3,
                          out=str(tmp_path / str(np.dtype(dtype))), verbose=0, device="cpu",
                          space=SMALL)
        m = s.best_model
        assert m.classes_.dtype == dtype and list(m.classes_) == sorted(values), m.classes_
        assert set(m.predict(x)) <= set(values)


def test_images_larger_than_the_models_are_resized_as_in_training(tmp_path, monkeypatch):
    monkeypatch.setenv("FASTFC_NO_SYSTEM_DATA", "1")
    (x, y), (xv, yv), (xt, yt) = fastfc.datasets.fashion_mnist()
    up = lambda a: np.kron(a[:3000], np.ones((1, 2, 2), dtype=np.float32))  # 16x16
    s = fastfc.search(up(x), y[:3000], validation_data=(up(xv), yv[:3000]), image_size=8,
                      strategy="random", trials=2, epochs=2, out=str(tmp_path / "s"), verbose=0,
                      device="cpu", space=SMALL)
    assert s.config["image_size"] == 8
    m = s.best_model
    p16 = m.predict_proba(up(xt))
    assert p16.shape == (3000, 10)
    # Resized back to 8x8 the upsampled images are close to the originals: the same answers
    # for nearly all rows, and an accuracy a broken resize could not reach.
    agree = np.mean(np.argmax(p16, axis=1) == np.argmax(m.predict_proba(xt[:3000]), axis=1))
    assert agree > 0.9, agree
    assert m.score(up(xt), yt[:3000]) > 0.6
    with pytest.raises(ValueError, match="the model takes 64 \\(8x8 images"):
        m.predict_proba(np.ones((2, 4, 4), dtype=np.float32))


def test_space_helpers_and_the_datasets_source():
    assert repr(fastfc.uniform(0, 1, count=3)) == "uniform(0.0, 1.0, count=3)"
    assert repr(fastfc.int_range(2, 4, step=2)) == "int(2, 4, step=2)"
    assert repr(fastfc.choice(["a", "b"])) == "choice(['a', 'b'])"
    t = fastfc.to_toml({"dropout": fastfc.uniform(0.0, 0.4, step=0.2), "layers": fastfc.int_range(2, 4)})
    assert "uniform = [0.0, 0.4]\nstep = 0.2" in t and "int = [2, 4]" in t
    (_, _, _), source = fastfc.datasets.fashion_mnist(return_source=True)
    assert "Fashion-MNIST" in source or "IDX" in source
    with pytest.raises(ValueError, match="1..=28"):
        fastfc.datasets.fashion_mnist(size=29)


def test_progress_lines_without_tqdm_and_per_run_lines(digits, tmp_path, monkeypatch, capsys):
    import builtins
    real = builtins.__import__

    def no_tqdm(name, *a, **kw):
        if name.startswith("tqdm"):
            raise ImportError("no tqdm here")
        return real(name, *a, **kw)
    monkeypatch.setattr(builtins, "__import__", no_tqdm)
    _search(digits, tmp_path / "s", strategy="random", trials=3, epochs=1, verbose=2)
    err = capsys.readouterr()
    assert "search: random: 3 configurations" in err.err
    assert err.err.count("run ") >= 3 and "| best" in err.err
    assert "best: run" in err.out
    _search(digits, tmp_path / "q", strategy="random", trials=3, epochs=1, verbose=0)
    quiet = capsys.readouterr()
    assert quiet.err == "" and quiet.out == ""


def test_bad_numbers_are_value_errors(digits, tmp_path):
    for kw, match in [(dict(seed=-1), "seed: -1"), (dict(patience=-1), "patience: -1"),
                      (dict(batch_size=1.5), "batch_size: 1.5")]:
        with pytest.raises(ValueError, match=match):
            _search(digits, tmp_path / "s", strategy="random", trials=1, epochs=1, **kw)
