"""Opens a fastfc study exported by `fastfc export optuna` with the real `optuna` package and
checks every trial against what fastfc's journal says (expected.json, written by tests/optuna.rs).

usage: check_optuna_export.py STUDY.log EXPECTED.json
"""
import json
import math
import sys

import optuna
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend
from optuna.trial import TrialState

log, expected_path = sys.argv[1], sys.argv[2]
want = json.load(open(expected_path))
study = optuna.load_study(study_name=want["study_name"], storage=JournalStorage(JournalFileBackend(log)))
assert study.direction == optuna.study.StudyDirection.MAXIMIZE, study.direction
trials = study.trials
assert len(trials) == len(want["trials"]), (len(trials), len(want["trials"]))
states = {"complete": TrialState.COMPLETE, "pruned": TrialState.PRUNED, "fail": TrialState.FAIL}
for t, w in zip(trials, want["trials"]):
    where = f"trial {t.number} (fastfc trial {w['trial_id']})"
    assert t.user_attrs["fastfc_trial_id"] == w["trial_id"], where
    assert t.state == states[w["state"]], (where, t.state, w["state"])
    if w["value"] is None:
        assert t.value is None, (where, t.value)
    else:
        assert t.value == w["value"], (where, t.value, w["value"])
    assert set(t.params) == set(w["params"]), (where, t.params, w["params"])
    for k, v in w["params"].items():
        got = t.params[k]
        if isinstance(v, float):
            assert math.isclose(got, v, rel_tol=1e-6), (where, k, got, v)
        else:
            # Same value and same type: a width must come back as int 32, not float 32.0.
            assert got == v and type(got) is type(v), (where, k, got, v)
        # Every value lies in its distribution.
        assert t.distributions[k]._contains(t.distributions[k].to_internal_repr(got)), (where, k, got)
    assert {int(k): v for k, v in w["intermediate"].items()} == t.intermediate_values, (
        where, t.intermediate_values, w["intermediate"])
    assert t.datetime_start is not None and t.datetime_complete is not None, where
    assert t.datetime_complete >= t.datetime_start, where
best = want["best_trial_id"]
assert study.best_trial.user_attrs["fastfc_trial_id"] == best, (study.best_trial.user_attrs, best)
assert study.user_attrs["fastfc"]["strategy"] == want["strategy"]
# Optuna's own tools run on it.
imp = optuna.importance.get_param_importances(study)
assert set(imp) <= set().union(*(t.params for t in trials)), imp
print(f"ok: {len(trials)} trials, states {sorted({t.state.name for t in trials})}, best {study.best_value}")
