"""FCNNClassifier as scikit-learn sees it: check_estimator, pipelines, the search CVs."""

import pickle

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.experimental import enable_halving_search_cv  # noqa: F401
from sklearn.model_selection import (HalvingRandomSearchCV, RandomizedSearchCV,
                                     cross_val_score, train_test_split)
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import check_estimator

import fastfc
from fastfc.sklearn import FCNNClassifier

# Checks FCNNClassifier does not pass, each with the reason. None today: every check of
# scikit-learn's suite passes (check_array_api_input is skipped by scikit-learn itself unless
# SCIPY_ARRAY_API is set).
EXPECTED_FAILED = {}


def test_check_estimator_passes():
    results = check_estimator(FCNNClassifier(random_state=0, threads=1, device="cpu"), on_fail=None,
                              expected_failed_checks=EXPECTED_FAILED)
    failed = {r["check_name"]: repr(r["exception"]) for r in results if r["status"] == "failed"}
    assert failed == {}, failed
    passed = [r for r in results if r["status"] == "passed"]
    assert len(passed) >= 50


def test_fits_predicts_and_scores_digits(digits):
    x_tr, y_tr, x_va, y_va, x_te, y_te = digits
    clf = FCNNClassifier(hidden=(64, 64), activation="relu", epochs=20, random_state=0).fit(x_tr, y_tr)
    assert clf.score(x_te, y_te) > 0.93
    assert clf.n_features_in_ == 64 and list(clf.classes_) == list(range(10))
    assert 1 <= clf.n_iter_ <= 20 and 1 <= clf.best_epoch_ <= clf.n_iter_
    assert len(clf.history_) == clf.n_iter_
    p = clf.predict_proba(x_te)
    # The engine's own float32 softmax rows sum to 1 (the estimator renormalises in float64).
    np.testing.assert_allclose(clf.model_.predict_proba(x_te).sum(axis=1), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(np.argmax(p, axis=1), np.argmax(clf.model_.predict_proba(x_te), axis=1))
    # Deterministic for a random_state, and pickles with its weights.
    again = clone(clf).fit(x_tr, y_tr)
    np.testing.assert_array_equal(again.predict_proba(x_te), p)
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(clf)).predict_proba(x_te), p)


def test_in_a_pipeline_and_cross_validation(iris):
    x, y = iris
    pipe = make_pipeline(StandardScaler(), FCNNClassifier(hidden=(32,), epochs=40, scale="none",
                                                          learning_rate=5e-3, random_state=1))
    scores = cross_val_score(pipe, x, y, cv=3)
    assert scores.mean() > 0.85


def test_randomized_and_halving_search_cv(digits):
    x_tr, y_tr, _, _, x_te, y_te = digits
    params = {"hidden": [(32,), (64, 64)], "activation": ["relu", "elu"],
              "learning_rate": [1e-3, 3e-3], "dropout": [0.0, 0.1]}
    rs = RandomizedSearchCV(FCNNClassifier(epochs=8, random_state=0), params, n_iter=3, cv=2,
                            random_state=0).fit(x_tr, y_tr)
    assert rs.best_score_ > 0.85 and rs.score(x_te, y_te) > 0.85
    hs = HalvingRandomSearchCV(FCNNClassifier(random_state=0, patience=0), params, n_candidates=4, resource="epochs",
                               min_resources=2, max_resources=8, factor=2, cv=2,
                               random_state=0).fit(x_tr, y_tr)
    # Successive halving over epochs: 4 candidates at 2 epochs, 2 at 4, 1 at 8.
    assert list(hs.n_resources_) == [2, 4, 8] and list(hs.n_candidates_) == [4, 2, 1]
    # ...and each fit trained the epochs it was given (no early stop with patience 0).
    assert hs.best_estimator_.epochs == 8 and hs.best_estimator_.n_iter_ == 8
    assert hs.score(x_te, y_te) > 0.8


def test_bad_parameters_raise_in_fit(digits):
    x, y = digits[0], digits[1]
    for est, match in [
        (FCNNClassifier(activation="tanhh"), "activation"),
        (FCNNClassifier(optimizer="adadelta"), "optimizer"),
        (FCNNClassifier(hidden=(0,)), "hidden"),
        (FCNNClassifier(validation_fraction=0.0), "validation_fraction"),
        (FCNNClassifier(scale="zscore"), "scale"),
        (FCNNClassifier(epochs=0), "epochs"),
    ]:
        with pytest.raises(ValueError, match=match):
            est.fit(x, y)
    with pytest.raises(ValueError, match="samples"):
        FCNNClassifier().fit(x[:3], y[:3])


def test_save_writes_a_model_the_cli_layout_reads(digits, tmp_path):
    x_tr, y_tr, _, _, x_te, _ = digits
    clf = FCNNClassifier(hidden=(16,), epochs=2, random_state=0).fit(x_tr, y_tr)
    clf.save(tmp_path / "m")
    m = fastfc.load_model(tmp_path / "m")
    np.testing.assert_array_equal(m.predict(x_te), clf.predict(x_te))


def test_threads_is_honoured_per_fit(digits):
    x, y = digits[0], digits[1]
    one = FCNNClassifier(hidden=(32,), epochs=2, random_state=0, threads=1).fit(x, y)
    two = FCNNClassifier(hidden=(32,), epochs=2, random_state=0, threads=2).fit(x, y)
    assert one.metrics_["device"] == "cpu (1 threads)" and two.metrics_["device"] == "cpu (2 threads)"
    # The thread count changes nothing but speed (determinism is a contract).
    np.testing.assert_array_equal(one.predict_proba(x), two.predict_proba(x))
    with pytest.raises(ValueError, match="threads: 0"):
        FCNNClassifier(threads=0).fit(x, y)


def test_bad_numbers_are_value_errors():
    from sklearn.datasets import load_iris
    x, y = load_iris(return_X_y=True)
    for est, match in [(FCNNClassifier(patience=-1), "patience: -1"),
                       (FCNNClassifier(random_state=-1), "random_state: -1"),
                       (FCNNClassifier(batch_size=0), "batch_size: 0"),
                       (FCNNClassifier(epochs=2.5), "epochs: 2.5")]:
        with pytest.raises(ValueError, match=match):
            est.fit(x, y)


def test_the_knobs_keras_has(digits):
    """SGD with Nesterov momentum, L2 and a cosine schedule, RMSprop, AdamW, Adagrad and the new
    activations train through the estimator; a parameter the optimizer lacks is refused by name."""
    x_tr, y_tr, _, _, x_te, y_te = digits
    for params in [
        dict(optimizer="sgd", learning_rate=0.05, momentum=0.9, nesterov=True,
             weight_decay=1e-4, schedule="cosine", warmup_epochs=1, activation="tanh"),
        dict(optimizer="rmsprop", rho=0.8, momentum=0.5, schedule="step", activation="mish"),
        dict(optimizer="adamw", weight_decay=0.01, schedule="exponential", decay_rate=0.8,
             activation="leaky_relu"),
        dict(optimizer="adagrad", learning_rate=0.05, activation="softplus"),
    ]:
        clf = FCNNClassifier(hidden=(64,), epochs=10, random_state=0, threads=1, device="cpu",
                             **params).fit(x_tr, y_tr)
        assert clf.score(x_te, y_te) > 0.85, params
        # The model says how it was trained: its optimizer's knobs, schedule and batch size.
        got = clf.model_.params
        for k, v in params.items():
            if k == "schedule":
                assert got["schedule"]["kind"] == v, got
            elif k in ("warmup_epochs", "decay_rate"):
                assert got["schedule"][k] == pytest.approx(v), got
            elif isinstance(v, float):
                assert got[k] == pytest.approx(v), (k, got)
            else:
                assert got[k] == v, (k, got)
        assert got["batch_size"] == clf.batch_size
        assert ("momentum" in got) == (params["optimizer"] in ("sgd", "rmsprop")), got
    with pytest.raises(ValueError, match="momentum: adam has no momentum"):
        FCNNClassifier(optimizer="adam", momentum=0.9, epochs=1).fit(x_tr, y_tr)
    with pytest.raises(ValueError, match="decay_rate: the constant schedule"):
        FCNNClassifier(decay_rate=0.5, epochs=1).fit(x_tr, y_tr)
