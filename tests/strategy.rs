//! Strategies with a fake objective (no tensors, milliseconds): Hyperband schedules against
//! hand-derived tables, promotion by validation score, random/grid proposals, space files.

use std::collections::HashMap;
use std::path::Path;

use fastfc::space::SearchSpace;
use fastfc::strategy::hyperband::{schedule, Hyperband};
use fastfc::strategy::{grid, random, Observation, Proposal, RunRequest, Strategy};
use fastfc::train::TrialStatus;

/// (trials, epochs after the round) per round, in order, for one iteration.
fn rounds(max_epochs: usize, factor: usize) -> Vec<(usize, usize, usize, usize)> {
    schedule(max_epochs, factor, 1)
        .iter()
        .map(|r| (r.bracket, r.round, r.trials, r.epochs))
        .collect()
}

#[test]
fn keras_tuner_default_schedule() {
    // Keras Tuner, max_epochs 10, factor 3: brackets of 12→4→2 (2, 4, 10 epochs), 6→2 (4, 10), 4 (10).
    assert_eq!(
        rounds(10, 3),
        vec![
            (2, 0, 12, 2),
            (2, 1, 4, 4),
            (2, 2, 2, 10),
            (1, 0, 6, 4),
            (1, 1, 2, 10),
            (0, 0, 4, 10)
        ]
    );
    let s = schedule(10, 3, 2);
    assert_eq!(s.iter().map(|r| r.trials).sum::<usize>(), 60);
    // Promoted trials continue: 12·2 + 4·2 + 2·6 + 6·4 + 2·6 + 4·10 = 120 per iteration.
    assert_eq!(
        s.iter().map(|r| r.trials * r.new_epochs).sum::<usize>(),
        240
    );
    let plan = Hyperband::new(&SearchSpace::default(), 10, 3, 2, 42)
        .unwrap()
        .plan();
    assert_eq!((plan.runs, plan.epochs), (60, 240));
}

#[test]
fn other_schedules_match_hand_derived_tables() {
    // R = 4, η = 2: 3 brackets, ⌈1 + log2 4⌉ = 3 → end sizes 3/3, 3/2, 3/1.
    assert_eq!(
        rounds(4, 2),
        vec![
            (2, 0, 4, 1),
            (2, 1, 2, 2),
            (2, 2, 1, 4),
            (1, 0, 3, 2),
            (1, 1, 2, 4),
            (0, 0, 3, 4)
        ]
    );
    let s = schedule(4, 2, 1);
    assert_eq!(
        s.iter().map(|r| r.trials * r.new_epochs).sum::<usize>(),
        4 + 2 + 2 + 6 + 4 + 12
    );
    // R = 5, η = 2: ⌈1 + log2 5⌉ = 4 → bracket 2 sizes ⌈(4/3)·4⌉ = 6, ⌈(4/3)·2⌉ = 3, 2.
    assert_eq!(
        rounds(5, 2),
        vec![
            (2, 0, 6, 2),
            (2, 1, 3, 3),
            (2, 2, 2, 5),
            (1, 0, 4, 3),
            (1, 1, 2, 5),
            (0, 0, 4, 5)
        ]
    );
    assert_eq!(
        schedule(5, 2, 1)
            .iter()
            .map(|r| r.trials * r.new_epochs)
            .sum::<usize>(),
        12 + 3 + 4 + 12 + 4 + 20
    );
    // R = 1: a single bracket of ⌈1 + 0⌉ = 1 trial.
    assert_eq!(rounds(1, 3), vec![(0, 0, 1, 1)]);
}

/// Drives a strategy to completion with objective = f(request); returns every request.
fn drive(s: &mut dyn Strategy, f: &dyn Fn(&RunRequest) -> f64) -> Vec<RunRequest> {
    let mut all = vec![];
    loop {
        match s.propose(usize::MAX) {
            Proposal::Run(reqs) => {
                let obs = outcomes(&reqs, f);
                all.extend(reqs);
                s.observe(&obs);
            }
            Proposal::Wait => panic!("nothing outstanding, yet Wait"),
            Proposal::Done => return all,
        }
    }
}

/// Each request's outcome: objective f(request), complete.
fn outcomes(reqs: &[RunRequest], f: &dyn Fn(&RunRequest) -> f64) -> Vec<Observation> {
    reqs.iter()
        .map(|q| Observation {
            run_id: q.run_id,
            trial_id: q.trial_id,
            objective: f(q),
            val_loss: 1.0 - f(q),
            status: TrialStatus::Complete,
        })
        .collect()
}

#[test]
fn hyperband_promotes_the_best_and_continues_their_checkpoints() {
    let mut hb = Hyperband::new(&SearchSpace::default(), 10, 3, 2, 7).unwrap();
    // Fake objective: higher learning rate is better.
    let all = drive(&mut hb, &|q| q.hp.learning_rate as f64);
    assert_eq!(all.len(), 60);
    let by_run: HashMap<u64, &RunRequest> = all.iter().map(|q| (q.run_id, q)).collect();
    let mut ids: Vec<u64> = all.iter().map(|q| q.run_id).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 60, "run ids are unique");
    for q in &all {
        let pos = q.bracket.unwrap();
        if pos.round == 0 {
            assert_eq!(q.resume_from, None);
            continue;
        }
        // A promoted run continues the same trial's run of the previous round...
        let prev = by_run[&q.resume_from.expect("promoted runs continue a checkpoint")];
        assert_eq!(prev.trial_id, q.trial_id);
        assert_eq!(prev.bracket.unwrap().round, pos.round - 1);
        assert!(prev.epochs < q.epochs);
        // ...and beat every non-promoted member of that round.
        let promoted: Vec<u64> = all
            .iter()
            .filter(|r| {
                r.bracket.map(|b| (b.iteration, b.bracket, b.round))
                    == Some((pos.iteration, pos.bracket, pos.round))
            })
            .map(|r| r.trial_id)
            .collect();
        for other in all.iter().filter(|r| {
            r.bracket.map(|b| (b.iteration, b.bracket, b.round))
                == Some((pos.iteration, pos.bracket, pos.round - 1))
                && !promoted.contains(&r.trial_id)
        }) {
            assert!(
                other.hp.learning_rate <= q.hp.learning_rate,
                "a worse trial was promoted"
            );
        }
    }
    let trials: std::collections::HashSet<u64> = all.iter().map(|q| q.trial_id).collect();
    assert_eq!(trials.len(), 44, "2 iterations x (12 + 6 + 4) fresh trials");
}

#[test]
fn hyperband_is_deterministic_and_rejects_bad_flags() {
    let a = drive(
        &mut Hyperband::new(&SearchSpace::default(), 10, 3, 1, 5).unwrap(),
        &|q| q.hp.dropout as f64,
    );
    let b = drive(
        &mut Hyperband::new(&SearchSpace::default(), 10, 3, 1, 5).unwrap(),
        &|q| q.hp.dropout as f64,
    );
    assert_eq!(a, b);
    let e = Hyperband::new(&SearchSpace::default(), 10, 1, 1, 5)
        .err()
        .unwrap()
        .to_string();
    assert_eq!(e, "--factor: 1: Hyperband needs a factor of at least 2");
    assert!(Hyperband::new(&SearchSpace::default(), 0, 3, 1, 5).is_err());
}

#[test]
fn random_search_gives_distinct_seeded_configurations() {
    let space = SearchSpace::default();
    let a = drive(&mut random::new(&space, 108, 10, 42).unwrap(), &|_| 0.5);
    assert_eq!(a.len(), 108);
    let keys: std::collections::HashSet<String> = a
        .iter()
        .map(|q| fastfc::strategy::config_key(&q.hp))
        .collect();
    assert_eq!(keys.len(), 108);
    for q in &a {
        assert!([2, 3, 4].contains(&q.hp.hidden.len()) && [32, 48, 64].contains(&q.hp.hidden[0]));
        assert!(q.hp.hidden.iter().all(|&w| w == q.hp.hidden[0]));
        assert!(
            (0.0..=0.4).contains(&q.hp.dropout) && (5e-4..=2.5e-3).contains(&q.hp.learning_rate)
        );
        assert_eq!(q.epochs, 10);
    }
    assert_eq!(
        a,
        drive(&mut random::new(&space, 108, 10, 42).unwrap(), &|_| 0.1)
    );
    assert_ne!(
        a,
        drive(&mut random::new(&space, 108, 10, 43).unwrap(), &|_| 0.1)
    );
    // A space with 2 configurations cannot give 3 distinct ones.
    let tiny = SearchSpace::parse(
        Path::new("t.toml"),
        "[layers]\nchoice = [2]\n[units]\nchoice=[32]\n[dropout]\nchoice=[0.1]\n[learning_rate]\nchoice=[0.001]\n[activation]\nchoice=[\"relu\"]\n[optimizer]\nchoice=[\"adam\",\"lion\"]\n",
    )
    .unwrap();
    let e = random::new(&tiny, 3, 1, 0).err().unwrap().to_string();
    assert!(e.contains("only 2 distinct"), "{e}");
}

#[test]
fn grid_is_the_cartesian_product() {
    let space = SearchSpace::parse(
        Path::new("g.toml"),
        "[layers]\nint = [2, 3]\n[units]\nchoice = [32, 64]\nper_layer = true\n[dropout]\nuniform = [0.0, 0.4]\ncount = 3\n[learning_rate]\nloguniform = [1e-4, 1e-2]\ncount = 2\n[activation]\nchoice = [\"elu\", \"relu\"]\n",
    )
    .unwrap();
    let g = drive(
        &mut grid::new(&space, Path::new("g.toml"), 3, None).unwrap(),
        &|_| 0.0,
    );
    // widths: 2² + 2³ = 12; × 2 activations × 2 optimizers × 3 dropouts × 2 rates.
    assert_eq!(g.len(), 12 * 2 * 2 * 3 * 2);
    let lrs: std::collections::BTreeSet<String> = g
        .iter()
        .map(|q| format!("{:.0e}", q.hp.learning_rate))
        .collect();
    assert_eq!(lrs.into_iter().collect::<Vec<_>>(), vec!["1e-2", "1e-4"]);
    assert_eq!(
        drive(
            &mut grid::new(&space, Path::new("g.toml"), 3, Some(5)).unwrap(),
            &|_| 0.0
        )
        .len(),
        5
    );
    let cont =
        SearchSpace::parse(Path::new("c.toml"), "[dropout]\nuniform = [0.0, 0.4]\n").unwrap();
    let e = grid::new(&cont, Path::new("c.toml"), 3, None)
        .err()
        .unwrap()
        .to_string();
    assert_eq!(
        e,
        "c.toml: key `dropout`: a grid needs `count = N` or `step = X` for a continuous parameter"
    );
}

#[test]
fn bad_space_files_name_the_key() {
    let cases = [
        (
            "[units]\nchoice = [32]\n[depth]\nchoice = [2]\n",
            "key `depth`: unknown parameter",
        ),
        (
            "[dropout]\nuniform = [0.4, 0.1]\n",
            "key `dropout.uniform`: expected [low, high] with low <= high",
        ),
        (
            "[dropout]\nuniform = [0.0, 1.5]\n",
            "key `dropout.uniform`: 1.5 is outside",
        ),
        (
            "[layers]\nuniform = [2, 4]\n",
            "key `layers`: takes integers",
        ),
        (
            "[units]\nchoice = [32.5]\n",
            "key `units.choice`: 32.5 is not an integer",
        ),
        (
            "[activation]\nchoice = [\"swish\"]\n",
            "key `activation`: `swish`: expected one of elu",
        ),
        (
            "[momentum]\nuniform = [0.0, 0.9]\n",
            "key `momentum`: no optimizer of the space has it (it belongs to sgd, rmsprop; the space has adam, lion)",
        ),
        (
            "[warmup_epochs]\nuniform = [0.0, 2.0]\n",
            "key `warmup_epochs`: no schedule of the space has it (it belongs to cosine",
        ),
        (
            "[schedule]\nchoice = [\"cosine\", \"linear\"]\n",
            "key `schedule`: `linear`: expected one of constant, cosine, exponential, step",
        ),
        (
            "[nesterov]\nchoice = [1]\n[optimizer]\nchoice = [\"sgd\"]\n",
            "key `nesterov`: 1 is not true or false",
        ),
        (
            "[batch_size]\nchoice = [16, 0]\n",
            "key `batch_size.choice`: 0 is outside 1..=65536",
        ),
        (
            "[beta_1]\nuniform = [0.5, 1.0]\n",
            "key `beta_1.uniform`: 1 is outside",
        ),
        (
            "[dropout]\nloguniform = [0.0, 0.4]\n",
            "log-uniform needs low > 0",
        ),
        (
            "[learning_rate]\nuniform = [1e-4, 1e-3]\nchoice = [1e-3]\n",
            "expected exactly one of",
        ),
        (
            "[dropout]\nuniform = [0.0, 0.4]\ncount = 2\nstep = 0.1\n",
            "give `count` or `step`, not both",
        ),
        (
            "[optimizer]\nchoice = []\n",
            "key `optimizer`: `choice` is empty",
        ),
        ("dropout = 0.1\n", "key `dropout`: expected a table"),
        ("[dropout\n", "not valid TOML"),
    ];
    for (text, want) in cases {
        let e = SearchSpace::parse(Path::new("space.toml"), text)
            .err()
            .unwrap()
            .to_string();
        assert!(
            e.starts_with("space.toml: ") && e.contains(want),
            "{text:?}: {e}"
        );
    }
}

/// Random and grid search hand out at most the capacity asked for, say Wait while runs are out
/// and nothing is left to propose, and Done once all are observed.
#[test]
fn fixed_runs_respect_capacity_and_wait_for_outstanding_runs() {
    let mut s = random::new(&SearchSpace::default(), 5, 2, 7).unwrap();
    let Proposal::Run(a) = s.propose(2) else {
        panic!("runs first")
    };
    assert_eq!(a.len(), 2);
    let Proposal::Run(b) = s.propose(10) else {
        panic!("the rest")
    };
    assert_eq!(b.len(), 3);
    assert!(
        matches!(s.propose(10), Proposal::Wait),
        "5 runs out, none observed"
    );
    let obs = |q: &RunRequest| Observation {
        run_id: q.run_id,
        trial_id: q.trial_id,
        objective: 0.5,
        val_loss: 0.5,
        status: TrialStatus::Complete,
    };
    s.observe(&a.iter().map(obs).collect::<Vec<_>>());
    assert!(matches!(s.propose(10), Proposal::Wait), "3 still out");
    s.observe(&b.iter().map(obs).collect::<Vec<_>>());
    assert!(matches!(s.propose(10), Proposal::Done));
    let ids: Vec<u64> = a.iter().chain(&b).map(|q| q.run_id).collect();
    assert_eq!(ids, [0, 1, 2, 3, 4]);
}

/// Hyperband proposes whole brackets: below the capacity when it can, one bracket at least; Wait
/// while every runnable round is out.
#[test]
fn hyperband_fills_capacity_by_whole_brackets_and_waits() {
    let mut h = Hyperband::new(&SearchSpace::default(), 10, 3, 1, 3).unwrap();
    let Proposal::Run(first) = h.propose(1) else {
        panic!()
    };
    assert_eq!(
        first.len(),
        12,
        "a bracket is never split, even past the capacity"
    );
    let Proposal::Run(next) = h.propose(9) else {
        panic!()
    };
    assert_eq!(
        next.len(),
        6,
        "the 4-run bracket would pass the capacity of 9 with it"
    );
    let Proposal::Run(last) = h.propose(100) else {
        panic!()
    };
    assert_eq!(last.len(), 4);
    assert!(matches!(h.propose(100), Proposal::Wait));
}

/// Promotion ranks by validation accuracy, and never takes a run that diverged or failed, even
/// one whose best epoch scored highest (its weights came before the blow-up); an early-stopped
/// run with the best score goes on. A round with nothing to promote ends its bracket.
#[test]
fn hyperband_promotes_early_stopped_runs_but_never_diverged_ones() {
    let first_round = |h: &mut Hyperband| {
        let Proposal::Run(first) = h.propose(usize::MAX) else {
            panic!()
        };
        first
    };
    let obs = |q: &RunRequest, objective: f64, status: TrialStatus| Observation {
        run_id: q.run_id,
        trial_id: q.trial_id,
        objective,
        val_loss: 1.0 - objective,
        status,
    };
    let mut h = Hyperband::new(&SearchSpace::default(), 3, 3, 1, 5).unwrap();
    let first = first_round(&mut h);
    let bracket: Vec<&RunRequest> = first.iter().filter(|q| q.epochs == 1).collect();
    assert_eq!(
        bracket.len(),
        3,
        "R = 3, η = 3: 3 runs of 1 epoch, the best goes on"
    );
    h.observe(&[
        obs(bracket[0], 0.9, TrialStatus::Diverged),
        obs(bracket[1], 0.7, TrialStatus::EarlyStopped),
        obs(bracket[2], 0.95, TrialStatus::Failed),
    ]);
    let Proposal::Run(promoted) = h.propose(usize::MAX) else {
        panic!()
    };
    let p: Vec<&RunRequest> = promoted
        .iter()
        .filter(|q| q.resume_from.is_some())
        .collect();
    assert_eq!(p.len(), 1, "{promoted:?}");
    assert_eq!(p[0].trial_id, bracket[1].trial_id);
    assert_eq!(p[0].resume_from, Some(bracket[1].run_id));
    // Every run of the 1-epoch round diverged (one with a NaN score): nothing is promoted, and
    // with the other bracket's runs in, the search is done rather than waiting forever.
    let mut h = Hyperband::new(&SearchSpace::default(), 3, 3, 1, 5).unwrap();
    let first = first_round(&mut h);
    let nan = first.iter().position(|q| q.epochs == 1).unwrap();
    let all: Vec<Observation> = first
        .iter()
        .enumerate()
        .map(|(i, q)| match q.epochs {
            1 if i == nan => obs(q, f64::NAN, TrialStatus::Diverged),
            1 => obs(q, 0.8, TrialStatus::Diverged),
            _ => obs(q, 0.6, TrialStatus::Complete),
        })
        .collect();
    h.observe(&all);
    assert_eq!(h.propose(usize::MAX), Proposal::Done);
}

/// A grid has exactly the values its space names, each configuration once, and log spacing
/// (three points: 1e-4, 1e-3, 1e-2, where linear spacing would give 5.005e-3 in the middle).
#[test]
fn grid_values_are_exact_distinct_and_log_spaced() {
    let space = SearchSpace::parse(
        Path::new("g.toml"),
        "[layers]\nchoice = [2]\n[units]\nchoice = [32]\n[dropout]\nuniform = [0.0, 0.4]\ncount = 3\n[learning_rate]\nloguniform = [1e-4, 1e-2]\ncount = 3\n[activation]\nchoice = [\"elu\"]\n[optimizer]\nchoice = [\"adam\"]\n",
    )
    .unwrap();
    let g = drive(
        &mut grid::new(&space, Path::new("g.toml"), 3, None).unwrap(),
        &|_| 0.0,
    );
    assert_eq!(g.len(), 9);
    let keys: std::collections::HashSet<String> = g
        .iter()
        .map(|q| fastfc::strategy::config_key(&q.hp))
        .collect();
    assert_eq!(keys.len(), 9, "a configuration twice");
    let mut lrs: Vec<f32> = g.iter().map(|q| q.hp.learning_rate).collect();
    lrs.sort_by(f32::total_cmp);
    lrs.dedup();
    assert_eq!(lrs.len(), 3);
    for (got, want) in lrs.iter().zip([1e-4f32, 1e-3, 1e-2]) {
        assert!((got - want).abs() <= want * 1e-5, "{lrs:?}");
    }
    let mut drops: Vec<f32> = g.iter().map(|q| q.hp.dropout).collect();
    drops.sort_by(f32::total_cmp);
    drops.dedup();
    assert_eq!(drops.len(), 3);
    for (got, want) in drops.iter().zip([0.0f32, 0.2, 0.4]) {
        assert!((got - want).abs() <= 1e-6, "{drops:?}");
    }
}

/// What `--dry-run` and the study record say of random and grid search: their names, and
/// runs × epochs for the plan (cargo-mutants found both unchecked).
#[test]
fn fixed_runs_name_themselves_and_plan_runs_times_epochs() {
    let r = random::new(&SearchSpace::default(), 5, 3, 1).unwrap();
    assert_eq!(r.name(), "random");
    let p = r.plan();
    assert_eq!((p.runs, p.epochs), (5, 15));
    assert!(
        p.lines[0].contains("5 configurations x 3 epochs"),
        "{:?}",
        p.lines
    );
    let space = SearchSpace::parse(Path::new("g.toml"), "[layers]\nchoice = [2]\n[units]\nchoice = [32]\n[activation]\nchoice = [\"elu\", \"relu\"]\n[optimizer]\nchoice = [\"adam\"]\n[dropout]\nuniform = [0.0, 0.2]\ncount = 2\n[learning_rate]\nloguniform = [1e-3, 1e-2]\ncount = 2\n").unwrap();
    let g = grid::new(&space, Path::new("g.toml"), 4, None).unwrap();
    assert_eq!(g.name(), "grid");
    assert_eq!((g.plan().runs, g.plan().epochs), (8, 32));
}

/// Hyperband's boundaries (the smallest factor and budget it accepts), its name, and a capacity
/// its brackets fill exactly (mutation survivors).
#[test]
fn hyperband_boundaries_name_and_an_exact_capacity() {
    let space = SearchSpace::default();
    let h = Hyperband::new(&space, 1, 2, 1, 1).unwrap();
    assert_eq!(h.name(), "hyperband");
    assert_eq!(h.plan().runs, 1, "max_epochs 1: one bracket of one run");
    assert!(
        Hyperband::new(&space, 10, 2, 1, 1).is_ok(),
        "factor 2 is allowed"
    );
    assert!(Hyperband::new(&space, 10, 3, 0, 1).is_err(), "0 iterations");
    let mut h = Hyperband::new(&space, 10, 3, 1, 3).unwrap();
    let Proposal::Run(first) = h.propose(1) else {
        panic!()
    };
    assert_eq!(first.len(), 12);
    let Proposal::Run(both) = h.propose(10) else {
        panic!()
    };
    assert_eq!(both.len(), 10, "6 + 4 fill a capacity of 10 exactly");
}

/// Random search over a space of four configurations: four trials find them all (after misses on
/// repeats), a fifth is an error saying how many there are.
#[test]
fn random_search_over_a_small_space_finds_all_and_then_says_so() {
    let space = SearchSpace::parse(Path::new("s.toml"), "[layers]\nchoice = [2]\n[units]\nchoice = [32]\n[activation]\nchoice = [\"elu\", \"relu\"]\n[optimizer]\nchoice = [\"adam\", \"lion\"]\n[dropout]\nchoice = [0.1]\n[learning_rate]\nchoice = [0.001]\n").unwrap();
    let r = drive(&mut random::new(&space, 4, 1, 9).unwrap(), &|_| 0.0);
    let keys: std::collections::HashSet<String> = r
        .iter()
        .map(|q| fastfc::strategy::config_key(&q.hp))
        .collect();
    assert_eq!(keys.len(), 4);
    let e = random::new(&space, 5, 1, 9).err().unwrap().to_string();
    assert!(
        e.contains("--trials") && e.contains("only 4 distinct configurations"),
        "{e}"
    );
}

// ---- TPE and BOHB ----------------------------------------------------------------------------

use fastfc::strategy::tpe::{default_weights, Split, Tpe, TpeSettings};

fn tpe_settings(batch: usize) -> TpeSettings {
    TpeSettings {
        batch,
        startup_trials: 10,
        candidates: 24,
        random_fraction: 0.0,
    }
}

/// A fake objective on the seed's space with a known optimum: 2 layers of 64, no dropout,
/// learning rate 1.8e-3, silu, lion (0.9 there). A configuration scores ≥ 0.88 only with every
/// choice right, dropout under about 0.067 and the learning rate within about 4.5e-4: a random
/// draw lands there about once in 2,700.
fn known_optimum(hp: &fastfc::model::Hyperparams) -> f64 {
    use fastfc::model::{Activation, Optimizer};
    let lr = (hp.learning_rate as f64 - 1.8e-3) / 1e-3;
    0.9 - 0.02 * (hp.hidden.len() as f64 - 2.0).abs()
        - if hp.hidden[0] == 64 { 0.0 } else { 0.02 }
        - 0.3 * hp.dropout as f64
        - 0.1 * lr * lr
        - if hp.activation == Activation::Silu {
            0.0
        } else {
            0.03
        }
        - if hp.optimizer == Optimizer::Lion {
            0.0
        } else {
            0.03
        }
}

/// Trials until the objective first reaches `target` (None: never, within the strategy's trials).
fn trials_to_reach(s: &mut dyn Strategy, target: f64) -> Option<usize> {
    let reqs = drive(s, &|q| known_optimum(&q.hp));
    reqs.iter()
        .position(|q| known_optimum(&q.hp) >= target)
        .map(|i| i + 1)
}

#[test]
fn tpe_finds_a_known_optimum_in_far_fewer_trials_than_random() {
    let space = SearchSpace::default();
    let mut tpe_total = 0;
    let mut random_total = 0;
    let mut misses = 0;
    for seed in 0..4 {
        for batch in [1, 8] {
            let mut tpe = Tpe::new(&space, 400, 10, seed, tpe_settings(batch)).unwrap();
            // TPE can settle in a near-optimal mode (say 3 layers, 0.02 short): such a run
            // counts as its whole 400 trials, and at most one of the eight may do so.
            match trials_to_reach(&mut tpe, 0.88) {
                Some(n) => tpe_total += n,
                None => {
                    misses += 1;
                    tpe_total += 400;
                }
            }
        }
        let mut rnd = random::new(&space, 3000, 10, seed).unwrap();
        let r = trials_to_reach(&mut rnd, 0.88).unwrap_or(3000);
        random_total += 2 * r;
    }
    assert!(misses <= 1, "{misses} of 8 TPE runs never reached 0.88");
    assert!(
        tpe_total * 5 < random_total,
        "TPE took {tpe_total} trials in all, random {random_total}"
    );
}

#[test]
fn tpe_proposes_a_cohort_at_a_time_deterministically() {
    let space = SearchSpace::default();
    // Cohorts of `batch`, each proposed after the previous one is observed; the last is short.
    let mut s = Tpe::new(&space, 20, 4, 7, tpe_settings(8)).unwrap();
    let mut sizes = vec![];
    loop {
        match s.propose(usize::MAX) {
            Proposal::Run(reqs) => {
                sizes.push(reqs.len());
                assert!(reqs
                    .iter()
                    .all(|q| q.epochs == 4 && q.resume_from.is_none()));
                s.observe(&outcomes(&reqs, &|q| known_optimum(&q.hp)));
            }
            Proposal::Wait => panic!("Wait with nothing outstanding"),
            Proposal::Done => break,
        }
    }
    assert_eq!(sizes, vec![8, 8, 4]);
    // Capacity limits a cohort; batch 1 is the sequential algorithm.
    let mut s = Tpe::new(&space, 20, 4, 7, tpe_settings(8)).unwrap();
    match s.propose(3) {
        Proposal::Run(r) => assert_eq!(r.len(), 3),
        p => panic!("{p:?}"),
    }
    let mut s = Tpe::new(&space, 20, 4, 7, tpe_settings(1)).unwrap();
    match s.propose(usize::MAX) {
        Proposal::Run(r) => assert_eq!(r.len(), 1),
        p => panic!("{p:?}"),
    }
    // The same seed proposes the same; another seed does not. Distinct configurations.
    let run = |seed| {
        let mut s = Tpe::new(&space, 40, 4, seed, tpe_settings(4)).unwrap();
        drive(&mut s, &|q| known_optimum(&q.hp))
    };
    let a = run(3);
    assert_eq!(a, run(3));
    assert_ne!(a, run(4));
    let keys: std::collections::HashSet<String> = a
        .iter()
        .map(|q| fastfc::strategy::config_key(&q.hp))
        .collect();
    assert_eq!(keys.len(), 40, "a configuration was proposed twice");
    assert_eq!(
        a.iter().map(|q| q.run_id).collect::<Vec<_>>(),
        (0..40).collect::<Vec<u64>>()
    );
    // Bad settings name their flags.
    for (t, st, flag) in [
        (0, tpe_settings(1), "--trials"),
        (5, tpe_settings(0), "--cohort-size"),
        (
            5,
            TpeSettings {
                candidates: 0,
                ..tpe_settings(1)
            },
            "--ei-candidates",
        ),
    ] {
        let e = Tpe::new(&space, t, 4, 1, st).err().unwrap().to_string();
        assert!(e.contains(flag), "{e}");
    }
}

/// The model learns from what it is told: observations where only `silu` scores well make TPE
/// propose `silu` far more often than its prior share (1 in 6), and a diverged run (NaN
/// objective) counts as the worst, never the best.
#[test]
fn tpe_follows_the_observations_and_ranks_nan_last() {
    use fastfc::model::Activation;
    let space = SearchSpace::default();
    let mut s = Tpe::new(&space, 200, 1, 5, tpe_settings(20)).unwrap();
    // Dropout breaks ties (TPE reads tied objectives in trial order, which a real objective
    // never has).
    let f = |hp: &fastfc::model::Hyperparams| match hp.activation {
        Activation::Silu => 0.9 - 0.2 * hp.dropout as f64,
        // gelu "diverges": NaN must rank below everything.
        Activation::Gelu => f64::NAN,
        _ => 0.5 - 0.2 * hp.dropout as f64,
    };
    let reqs = drive(&mut s, &|q| f(&q.hp));
    let late = &reqs[100..];
    let count = |a| late.iter().filter(|q| q.hp.activation == a).count();
    assert!(
        count(Activation::Silu) > 60,
        "silu {}",
        count(Activation::Silu)
    );
    assert!(
        count(Activation::Gelu) < 10,
        "gelu {}",
        count(Activation::Gelu)
    );
}

#[test]
fn tpe_split_and_weights_follow_optuna() {
    // γ(n) = min(⌈0.1·n⌉, 25).
    for (n, good) in [(1, 1), (10, 1), (11, 2), (100, 10), (249, 25), (1000, 25)] {
        assert_eq!(Split::Optuna.sizes(n), (good, n - good), "n = {n}");
    }
    // BOHB: good = max(n_min, ⌈0.15·n⌉), bad = max(n_min, n − good).
    assert_eq!(Split::Bohb { n_min: 7 }.sizes(9), (7, 7));
    assert_eq!(Split::Bohb { n_min: 7 }.sizes(100), (15, 85));
    assert_eq!(Split::Bohb { n_min: 7 }.sizes(5), (5, 5));
    assert_eq!(default_weights(3), vec![1.0; 3]);
    let w = default_weights(30);
    assert_eq!(w.len(), 30);
    assert!((w[0] - 1.0 / 30.0).abs() < 1e-12 && w[4] == 1.0 && w[5..].iter().all(|&x| x == 1.0));
    assert!(w[..5].windows(2).all(|p| p[0] < p[1]), "{w:?}");
    // Optuna: the ramp is np.linspace(1/n, 1, n - 25): one weight of 1/n at n = 26; none at 25.
    let w = default_weights(26);
    assert!(
        (w[0] - 1.0 / 26.0).abs() < 1e-15 && w[1..].iter().all(|&x| x == 1.0),
        "{w:?}"
    );
    assert_eq!(default_weights(25), vec![1.0; 25]);
}

/// TPE's model covers the whole grid of an `int` parameter whose step misses the upper bound:
/// int = [16, 100], step 16 ends at 96, and when 96 is the best width TPE proposes it.
#[test]
fn tpe_reaches_the_last_point_of_an_int_grid() {
    let space = SearchSpace::parse(
        Path::new("space.toml"),
        "[layers]\nchoice = [2]\n[units]\nint = [16, 100]\nstep = 16\n",
    )
    .unwrap();
    let mut tpe = Tpe::new(&space, 60, 1, 3, tpe_settings(1)).unwrap();
    let reqs = drive(&mut tpe, &|q| q.hp.hidden[0] as f64 / 100.0);
    let late: Vec<usize> = reqs[20..].iter().map(|q| q.hp.hidden[0]).collect();
    assert!(
        late.iter().all(|u| u % 16 == 0 && (16..=96).contains(u)),
        "{late:?}"
    );
    assert!(
        late.iter().filter(|&&u| u == 96).count() >= 10,
        "TPE should settle on the best width, 96: {late:?}"
    );
}

#[test]
fn bohb_runs_hyperbands_schedule_with_model_based_brackets() {
    let space = SearchSpace::default();
    let settings = TpeSettings {
        batch: 0,
        startup_trials: 0,
        candidates: 64,
        random_fraction: 1.0 / 3.0,
    };
    // Budget matters a little, the configuration a lot.
    let f = |q: &RunRequest| known_optimum(&q.hp) - 0.05 / q.epochs as f64;
    let mut b = Hyperband::bohb(&space, 10, 3, 2, 1, settings).unwrap();
    assert_eq!(b.name(), "bohb");
    let hb_plan = Hyperband::new(&space, 10, 3, 2, 1).unwrap().plan();
    assert_eq!(
        (b.plan().runs, b.plan().epochs),
        (hb_plan.runs, hb_plan.epochs)
    );
    // One new bracket per proposal: the first proposal is the most exploratory bracket alone.
    match b.propose(usize::MAX) {
        Proposal::Run(r) => {
            assert_eq!(r.len(), 12);
            b.observe(&outcomes(&r, &f));
        }
        p => panic!("{p:?}"),
    }
    // Proposal by proposal: a bracket starts only after the one before it has a result, and
    // with it come the promotions that are ready (Hyperband would propose all 44 first rounds
    // at once): 12; 4 promoted + 6 new; 2 + 2 + 4 new; and again for iteration 2.
    let mut b = Hyperband::bohb(&space, 10, 3, 2, 1, settings).unwrap();
    let mut sizes = vec![];
    while let Proposal::Run(r) = b.propose(usize::MAX) {
        sizes.push(r.len());
        b.observe(&outcomes(&r, &f));
    }
    assert_eq!(sizes, vec![12, 10, 8, 12, 10, 8]);
    let mut b = Hyperband::bohb(&space, 10, 3, 2, 1, settings).unwrap();
    let reqs = drive(&mut b, &f);
    // The same schedule as Hyperband's: rounds, sizes, epochs, promotions from checkpoints.
    let mut h = Hyperband::new(&space, 10, 3, 2, 1).unwrap();
    let hreqs = drive(&mut h, &f);
    let shape = |r: &[RunRequest]| {
        let mut v: Vec<_> = r
            .iter()
            .map(|q| (q.bracket, q.epochs, q.resume_from.is_some()))
            .collect();
        v.sort_by_key(|x| format!("{x:?}"));
        v
    };
    assert_eq!(shape(&reqs), shape(&hreqs));
    for q in reqs.iter().filter(|q| q.resume_from.is_some()) {
        let from = &reqs[q.resume_from.unwrap() as usize];
        assert_eq!((from.trial_id, &from.hp), (q.trial_id, &q.hp));
    }
    // Deterministic for a seed.
    let mut again = Hyperband::bohb(&space, 10, 3, 2, 1, settings).unwrap();
    assert_eq!(drive(&mut again, &f), reqs);
    // Better configurations than Hyperband's random ones, over seeds: the mean objective of the
    // configurations each draws after its first bracket.
    let (mut bohb_mean, mut hb_mean) = (0.0, 0.0);
    for seed in 0..5 {
        let fresh = |r: Vec<RunRequest>| -> f64 {
            let v: Vec<f64> = r
                .iter()
                .filter(|q| q.resume_from.is_none() && q.trial_id >= 12)
                .map(|q| known_optimum(&q.hp))
                .collect();
            v.iter().sum::<f64>() / v.len() as f64
        };
        bohb_mean += fresh(drive(
            &mut Hyperband::bohb(&space, 10, 3, 2, seed, settings).unwrap(),
            &f,
        ));
        hb_mean += fresh(drive(
            &mut Hyperband::new(&space, 10, 3, 2, seed).unwrap(),
            &f,
        ));
    }
    assert!(
        bohb_mean > hb_mean + 5.0 * 0.02,
        "BOHB's new configurations average {:.4}, Hyperband's {:.4}",
        bohb_mean / 5.0,
        hb_mean / 5.0
    );
    // Bad settings name their flags.
    for (st, flag) in [
        (
            TpeSettings {
                random_fraction: 1.5,
                ..settings
            },
            "--random-fraction",
        ),
        (
            TpeSettings {
                candidates: 0,
                ..settings
            },
            "--ei-candidates",
        ),
    ] {
        let e = Hyperband::bohb(&space, 10, 3, 2, 1, st)
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains(flag), "{e}");
    }
}

/// TPE and BOHB over every kind of parameter: `int` layers with a step that does not reach the
/// upper bound, a width per layer (a parameter only deeper configurations have), `loguniform`
/// learning rate. Every proposal lies in the space, and TPE concentrates on a known optimum of
/// the learning rate (in log scale) far more than random draws do.
#[test]
fn tpe_and_bohb_propose_only_configurations_of_the_space() {
    let space = SearchSpace::parse(
        Path::new("space.toml"),
        "[layers]\nint = [1, 6]\nstep = 2\n[units]\nint = [16, 100]\nstep = 16\nper_layer = true\n\
         [dropout]\nuniform = [0.0, 0.3]\n[learning_rate]\nloguniform = [1e-4, 1e-1]\n",
    )
    .unwrap();
    let valid = |hp: &fastfc::model::Hyperparams| {
        [1, 3, 5].contains(&hp.hidden.len())
            && hp
                .hidden
                .iter()
                .all(|u| [16, 32, 48, 64, 80, 96].contains(u))
            && (0.0..=0.3).contains(&hp.dropout)
            && (1e-4..=1e-1).contains(&hp.learning_rate)
    };
    // Optimum: lr 3e-3 (log scale), 3 layers, widths rising.
    let f = |hp: &fastfc::model::Hyperparams| {
        let lr = (hp.learning_rate as f64 / 3e-3).ln();
        let rising = hp.hidden.windows(2).filter(|w| w[0] < w[1]).count() as f64;
        1.0 - 0.1 * lr * lr - 0.05 * (hp.hidden.len() as f64 - 3.0).abs() + 0.01 * rising
            - 0.1 * hp.dropout as f64
    };
    let mut tpe = Tpe::new(&space, 120, 1, 9, tpe_settings(4)).unwrap();
    let reqs = drive(&mut tpe, &|q| f(&q.hp));
    for q in &reqs {
        assert!(valid(&q.hp), "TPE proposed {:?}", q.hp);
    }
    let lr_err = |r: &[RunRequest]| -> f64 {
        let mut e: Vec<f64> = r
            .iter()
            .map(|q| (q.hp.learning_rate as f64 / 3e-3).ln().abs())
            .collect();
        e.sort_by(f64::total_cmp);
        e[e.len() / 2]
    };
    let mut rnd = random::new(&space, 120, 1, 9).unwrap();
    let random_reqs = drive(&mut rnd, &|q| f(&q.hp));
    assert!(
        lr_err(&reqs[60..]) * 3.0 < lr_err(&random_reqs[60..]),
        "median |ln(lr/3e-3)| of the last 60: TPE {:.3}, random {:.3}",
        lr_err(&reqs[60..]),
        lr_err(&random_reqs[60..])
    );
    let settings = TpeSettings {
        batch: 0,
        startup_trials: 0,
        candidates: 64,
        random_fraction: 1.0 / 3.0,
    };
    let mut b = Hyperband::bohb(&space, 9, 3, 2, 4, settings).unwrap();
    for q in drive(&mut b, &|q| f(&q.hp)) {
        assert!(valid(&q.hp), "BOHB proposed {:?}", q.hp);
    }
}

// ---- ASHA ------------------------------------------------------------------------------------

use fastfc::strategy::asha::{rungs, Asha};

#[test]
fn asha_rungs_follow_hyperbands_most_exploratory_bracket() {
    assert_eq!(rungs(10, 3, 1), vec![2, 4, 10]);
    assert_eq!(rungs(9, 3, 1), vec![1, 3, 9]);
    assert_eq!(rungs(27, 3, 1), vec![1, 3, 9, 27]);
    // 10/3 ≥ 2 but 10/9 < 2: two rungs.
    assert_eq!(rungs(10, 3, 2), vec![4, 10]);
    assert_eq!(rungs(5, 2, 1), vec![2, 3, 5]);
    assert_eq!(rungs(3, 3, 3), vec![3]);
    let space = SearchSpace::default();
    for (args, flag) in [
        ((10, 1, 1, 5, 4), "--factor"),
        ((10, 3, 0, 5, 4), "--min-epochs"),
        ((2, 3, 3, 5, 4), "--max-epochs"),
        ((10, 3, 1, 0, 4), "--trials"),
        ((10, 3, 1, 5, 0), "--cohort-size"),
    ] {
        let (max, eta, min, trials, batch) = args;
        let e = Asha::new(&space, max, eta, min, trials, batch, 1)
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains(flag), "{e}");
    }
    // The boundaries are allowed: a factor of 2, one rung (max = min), one trial of one job.
    for (max, eta, min, trials, batch) in [(10, 2, 1, 5, 4), (3, 3, 3, 5, 4), (10, 3, 1, 1, 1)] {
        Asha::new(&space, max, eta, min, trials, batch, 1)
            .unwrap_or_else(|e| panic!("{max} {eta} {min} {trials} {batch}: {e}"));
    }
}

/// However many runs reach the top rung, none is promoted past it: every job trains at most
/// --max-epochs, and the study ends.
#[test]
fn asha_never_promotes_past_its_top_rung() {
    // R = 4, η = 2: rungs of 1, 2, 4 epochs; 32 configurations, so several reach the top.
    let mut a = Asha::new(&SearchSpace::default(), 4, 2, 1, 32, 4, 5).unwrap();
    let mut top = 0;
    let mut guard = 0;
    loop {
        match a.propose(usize::MAX) {
            Proposal::Run(r) => {
                for q in &r {
                    assert!(q.epochs <= 4, "{q:?}");
                    top += usize::from(q.epochs == 4);
                }
                a.observe(&outcomes(&r, &|q| {
                    (q.trial_id % 7) as f64 / 10.0 + q.epochs as f64 / 100.0
                }));
            }
            Proposal::Wait => panic!("Wait with nothing outstanding"),
            Proposal::Done => break,
        }
        guard += 1;
        assert!(guard < 200);
    }
    assert!(top >= 3, "only {top} runs reached the top rung");
}

/// Objective by trial: trial t scores OBJ[t] at every rung.
const OBJ: [f64; 8] = [0.5, 0.6, 0.4, 0.7, 0.3, 0.8, 0.2, 0.9];

/// (trial, epochs, the run it continues) of one job.
type Job = (u64, usize, Option<u64>);

/// Drives ASHA proposal by proposal; returns (proposal sizes, jobs).
fn asha_jobs(batch: usize) -> (Vec<usize>, Vec<Job>) {
    let mut a = Asha::new(&SearchSpace::default(), 9, 3, 1, 8, batch, 3).unwrap();
    let (mut sizes, mut jobs) = (vec![], vec![]);
    loop {
        match a.propose(usize::MAX) {
            Proposal::Run(r) => {
                sizes.push(r.len());
                jobs.extend(r.iter().map(|q| (q.trial_id, q.epochs, q.resume_from)));
                let obs = outcomes(&r, &|q| OBJ[q.trial_id as usize]);
                a.observe(&obs);
            }
            Proposal::Wait => panic!("Wait with nothing outstanding"),
            Proposal::Done => return (sizes, jobs),
        }
    }
}

/// R = 9, η = 3: rungs of 1, 3, 9 epochs; 8 configurations scoring OBJ. Derived by hand from the
/// paper's get_job, one job at a time: a run is promoted as soon as it is in the top ⌊n/3⌋ of
/// the n runs recorded at its rung (t1 after 3 results, t3 after 4, t5 after 6 and at once again
/// from rung 1, …), and only then do new configurations start.
#[test]
fn asha_promotes_as_soon_as_a_run_is_in_the_top_third_of_its_rung() {
    let (sizes, jobs) = asha_jobs(1);
    assert!(sizes.iter().all(|&n| n == 1));
    assert_eq!(
        jobs,
        vec![
            (0, 1, None),
            (1, 1, None),
            (2, 1, None),
            (1, 3, Some(1)),
            (3, 1, None),
            (3, 3, Some(4)),
            (4, 1, None),
            (5, 1, None),
            (5, 3, Some(7)),
            (5, 9, Some(8)),
            (6, 1, None),
            (7, 1, None),
            (7, 3, Some(11)),
            (7, 9, Some(12)),
        ]
    );
    // Cohorts of 4: each job of a cohort is chosen from the results before it, so the first
    // cohort is all new; t5 no longer reaches rung 2, since t7 is at rung 1 by then.
    let (sizes, jobs) = asha_jobs(4);
    assert_eq!(sizes, vec![4, 4, 2, 1, 1]);
    assert_eq!(
        jobs,
        vec![
            (0, 1, None),
            (1, 1, None),
            (2, 1, None),
            (3, 1, None),
            (3, 3, Some(3)),
            (4, 1, None),
            (5, 1, None),
            (6, 1, None),
            (5, 3, Some(6)),
            (7, 1, None),
            (7, 3, Some(9)),
            (7, 9, Some(10)),
        ]
    );
}

#[test]
fn asha_never_promotes_a_diverged_run_and_plans_its_worst_case() {
    // Every run diverges: each rung's top third is a diverged run, which stays where it is.
    let mut a = Asha::new(&SearchSpace::default(), 9, 3, 1, 6, 2, 3).unwrap();
    let mut all = vec![];
    while let Proposal::Run(r) = a.propose(usize::MAX) {
        let obs: Vec<Observation> = r
            .iter()
            .map(|q| Observation {
                run_id: q.run_id,
                trial_id: q.trial_id,
                objective: f64::NAN,
                val_loss: f64::NAN,
                status: TrialStatus::Diverged,
            })
            .collect();
        a.observe(&obs);
        all.extend(r);
    }
    assert_eq!(all.len(), 6, "only the 6 new configurations: {all:?}");
    assert!(all.iter().all(|q| q.resume_from.is_none() && q.epochs == 1));
    // The plan bounds the work: 108 configurations at 2 epochs, 36 on to 4, 12 on to 10.
    let p = Asha::new(&SearchSpace::default(), 10, 3, 1, 108, 8, 1)
        .unwrap()
        .plan();
    assert_eq!(
        (p.runs, p.epochs),
        (108 + 36 + 12, 108 * 2 + 36 * 2 + 12 * 6)
    );
    assert_eq!(
        Asha::new(&SearchSpace::default(), 10, 3, 1, 108, 8, 1)
            .unwrap()
            .name(),
        "asha"
    );
}

/// Workers of a shared study ask for work whenever they are free, with other runs still out:
/// ASHA answers with what get_job gives (new configurations while nothing is promotable; Wait
/// only when every configuration has started and results still out may promote; Done when all
/// are in), and TPE with the next cohort, the trials still out counting as the worst results.
#[test]
fn asha_and_tpe_propose_while_runs_are_out_for_free_workers() {
    // ASHA, R = 9, η = 3, 8 configurations, jobs of 2.
    let mut a = Asha::new(&SearchSpace::default(), 9, 3, 1, 8, 2, 3).unwrap();
    let mut out = vec![];
    for _ in 0..4 {
        match a.propose(usize::MAX) {
            Proposal::Run(r) => {
                assert!(r.iter().all(|q| q.epochs == 1 && q.resume_from.is_none()));
                out.extend(r);
            }
            p => panic!("a free worker gets new configurations: {p:?}"),
        }
    }
    let trials: Vec<u64> = out.iter().map(|q| q.trial_id).collect();
    assert_eq!(trials, (0..8).collect::<Vec<_>>());
    assert_eq!(a.propose(usize::MAX), Proposal::Wait, "all started, 8 out");
    // Three results in: the best of them (trial 1 of 0.5, 0.6, 0.4) is promoted at once.
    a.observe(&outcomes(&out[..3], &|q| OBJ[q.trial_id as usize]));
    match a.propose(usize::MAX) {
        Proposal::Run(r) => {
            assert_eq!(r.len(), 1);
            assert_eq!((r[0].trial_id, r[0].epochs), (1, 3));
            out.extend(r);
        }
        p => panic!("{p:?}"),
    }
    let mut guard = 0;
    loop {
        let rest: Vec<_> = std::mem::take(&mut out);
        a.observe(&outcomes(&rest, &|q| OBJ[q.trial_id as usize]));
        match a.propose(usize::MAX) {
            Proposal::Run(r) => out.extend(r),
            Proposal::Wait => panic!("Wait with nothing out"),
            Proposal::Done => break,
        }
        guard += 1;
        assert!(guard < 50);
    }
    // TPE: a second cohort while the first is out, of new trials and distinct configurations.
    let space = SearchSpace::default();
    let mut s = Tpe::new(&space, 20, 4, 7, tpe_settings(4)).unwrap();
    let mut seen = std::collections::HashSet::new();
    let mut ids = vec![];
    for _ in 0..3 {
        match s.propose(usize::MAX) {
            Proposal::Run(r) => {
                for q in &r {
                    assert!(seen.insert(fastfc::strategy::config_key(&q.hp)));
                    ids.push(q.trial_id);
                }
            }
            p => panic!("{p:?}"),
        }
    }
    assert_eq!(ids, (0..12).collect::<Vec<_>>());
}

/// BOHB fits its model only on a budget with at least d + 3 results (N_min = d + 1 plus two,
/// as in the paper), where d counts the space's dimensions. With no random fraction, BOHB then
/// draws from the model; before, it draws exactly what an all-random BOHB draws. One-epoch
/// brackets of one configuration each make every draw follow one more result.
#[test]
fn bohb_fits_its_model_from_d_plus_3_results() {
    use fastfc::strategy::tpe::Dims;
    let space = SearchSpace::default();
    let d = Dims::new(&space).len();
    // layers, units, dropout, learning rate, activation, optimizer; with a width per layer, the
    // one width becomes one per possible layer (up to 4).
    assert_eq!(d, 6);
    assert!(!Dims::new(&space).is_empty());
    let per_layer = SearchSpace {
        per_layer: true,
        ..space.clone()
    };
    assert_eq!(Dims::new(&per_layer).len(), 9);
    let configs = |random_fraction: f64| -> Vec<fastfc::model::Hyperparams> {
        let settings = TpeSettings {
            batch: 0,
            startup_trials: 0,
            candidates: 64,
            random_fraction,
        };
        let mut b = Hyperband::bohb(&space, 1, 3, d + 6, 9, settings).unwrap();
        let reqs = drive(&mut b, &|q| known_optimum(&q.hp));
        assert!(reqs
            .iter()
            .all(|q| q.epochs == 1 && q.resume_from.is_none()));
        assert!(b.own_seconds() > 0.0, "BOHB reports the time it spends");
        reqs.into_iter().map(|q| q.hp).collect()
    };
    let (model, random) = (configs(0.0), configs(1.0));
    assert_eq!(model.len(), d + 6);
    assert_eq!(
        model[..d + 3],
        random[..d + 3],
        "no model before d + 3 results"
    );
    for k in d + 3..d + 6 {
        assert_ne!(
            model[k], random[k],
            "draw {k} follows {k} results: from the model"
        );
    }
    // Strategies without a model spend no time of their own.
    let r = random::new(&space, 4, 1, 9).unwrap();
    assert_eq!(r.own_seconds(), 0.0);
    assert_eq!(
        Hyperband::new(&space, 9, 3, 1, 9).unwrap().own_seconds(),
        0.0
    );
}

/// A truncated Gaussian's density on [low, high], written out here from its definition.
fn truncated_normal(x: f64, mu: f64, sigma: f64, low: f64, high: f64) -> f64 {
    let cdf = |v: f64| 0.5 * (1.0 + libm::erf((v - mu) / (sigma * std::f64::consts::SQRT_2)));
    let phi =
        (-0.5 * ((x - mu) / sigma).powi(2)).exp() / (sigma * (2.0 * std::f64::consts::PI).sqrt());
    phi / (cdf(high) - cdf(low))
}

/// TPE's Parzen estimators, value by value against the mixtures the module's rules give
/// (Optuna's): one kernel per observation, with bandwidth the larger gap to its sorted neighbours
/// (the outermost look inwards only), clipped to [range / (1 + kernels), range]; a prior kernel at
/// the middle with bandwidth = range; equal weights below 25 observations. Numbers get truncated
/// Gaussians, integers the mass of their bin, categories `prior / kernels` everywhere plus 1 on
/// the observed choice. Each is a density: it integrates (sums) to 1.
#[test]
fn parzen_estimators_are_the_mixtures_tpe_describes() {
    use fastfc::strategy::tpe::Parzen;
    let close = |got: f64, want: f64, what: &str| {
        assert!(
            (got - want).abs() <= 1e-9 * want.abs(),
            "{what}: {got} vs {want}"
        );
    };
    // (observations, low, high, kernels as (mu, sigma) with equal weights, prior last).
    type Case<'a> = (&'a [f64], f64, f64, &'a [(f64, f64)]);
    let cases: [Case; 4] = [
        // One observation: its gaps are 1.2 and 2.8; the floor is 4 / 3.
        (&[0.2], -1.0, 3.0, &[(0.2, 2.8), (1.0, 4.0)]),
        // Out of order on purpose. Sorted 0.1, 0.15, 0.7: the outer two look inwards (0.05 →
        // raised to the floor 1/5; 0.55), the middle one takes its larger gap (0.55).
        (
            &[0.7, 0.1, 0.15],
            0.0,
            1.0,
            &[(0.7, 0.55), (0.1, 0.2), (0.15, 0.55), (0.5, 1.0)],
        ),
        // 0.6's gap below (0.5) is its larger one, 0.7's the one above (0.25); the floor is 1/6.
        (
            &[0.95, 0.6, 0.1, 0.7],
            0.0,
            1.0,
            &[
                (0.95, 0.25),
                (0.6, 0.5),
                (0.1, 0.5),
                (0.7, 0.25),
                (0.5, 1.0),
            ],
        ),
        // Two equal observations near the top: both look inwards, a gap of 0, raised to 1/4.
        (
            &[0.9, 0.9],
            0.0,
            1.0,
            &[(0.9, 0.25), (0.9, 0.25), (0.5, 1.0)],
        ),
    ];
    for (values, low, high, kernels) in cases {
        let p = Parzen::numeric(low, high, values);
        let w = 1.0 / kernels.len() as f64;
        for i in 0..=40 {
            let x = low + (high - low) * i as f64 / 40.0;
            let want: f64 = kernels
                .iter()
                .map(|&(mu, s)| w * truncated_normal(x, mu, s, low, high))
                .sum();
            close(p.pdf(x), want, &format!("{values:?} at {x}"));
        }
        let n = 20_000;
        let h = (high - low) / n as f64;
        let integral: f64 = (0..n).map(|i| p.pdf(low + (i as f64 + 0.5) * h) * h).sum();
        assert!(
            (integral - 1.0).abs() < 1e-6,
            "{values:?}: integral {integral}"
        );
    }

    // An integer 16, 32, …, 96 (step 16) lives on [8, 104]; observed 32, 32, 80: gaps sorted
    // 0 (raised to 96 / 5), 48, 48; the prior sits at 56 with bandwidth 96.
    let p = Parzen::integer(16.0, 96.0, 16.0, &[32.0, 32.0, 80.0]);
    let kernels = [(32.0, 19.2), (32.0, 48.0), (80.0, 48.0), (56.0, 96.0)];
    let mut total = 0.0;
    for k in (16..=96).step_by(16) {
        let k = k as f64;
        let want: f64 = kernels
            .iter()
            .map(|&(mu, s)| {
                let cdf = |v: f64| 0.5 * libm::erfc(-(v - mu) / (s * std::f64::consts::SQRT_2));
                0.25 * (cdf(k + 8.0) - cdf(k - 8.0)) / (cdf(104.0) - cdf(8.0))
            })
            .sum();
        close(p.pdf(k), want, &format!("integer {k}"));
        total += p.pdf(k);
    }
    close(total, 1.0, "the integer's probabilities");

    // Categories: observed 2, 2, 0 of 3 choices; 4 kernels of weight 1/4, each observed row
    // (1/4 everywhere + 1 on its choice) / 1.75, the prior row 1/3 each.
    let p = Parzen::categorical(3, &[2.0, 2.0, 0.0]);
    let row = |c: usize, obs: usize| if c == obs { 1.25 / 1.75 } else { 0.25 / 1.75 };
    let mut total = 0.0;
    for c in 0..3 {
        let want = 0.25 * (row(c, 2) + row(c, 2) + row(c, 0) + 1.0 / 3.0);
        close(p.pdf(c as f64), want, &format!("category {c}"));
        total += p.pdf(c as f64);
    }
    close(total, 1.0, "the categories' probabilities");
}

/// Draws from a Parzen estimator follow its density: the share of 200,000 draws in each of ten
/// bins (in each value, for integers and categories) is the density's mass there, to within four
/// standard errors; every draw lies in the range, and integers on their grid.
#[test]
fn parzen_draws_follow_the_density() {
    use fastfc::strategy::tpe::Parzen;
    use rand::SeedableRng;
    let n = 200_000;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
    let within = |count: usize, p: f64, what: &str| {
        let got = count as f64 / n as f64;
        let se = (p * (1.0 - p) / n as f64).sqrt();
        assert!(
            (got - p).abs() <= 4.0 * se + 1e-4,
            "{what}: {got} of the draws where the density has {p}"
        );
    };

    // Numbers on [-1, 3], in bins of 0.4; a bin's mass by the midpoint rule.
    let p = Parzen::numeric(-1.0, 3.0, &[2.6, -0.5, 0.1, 0.2]);
    let mut bins = [0usize; 10];
    for _ in 0..n {
        let x = p.sample(&mut rng);
        assert!((-1.0..=3.0).contains(&x), "{x} is outside [-1, 3]");
        bins[(((x + 1.0) / 0.4) as usize).min(9)] += 1;
    }
    for (b, &count) in bins.iter().enumerate() {
        let (lo, m) = (-1.0 + 0.4 * b as f64, 2000);
        let mass: f64 = (0..m)
            .map(|i| p.pdf(lo + 0.4 * (i as f64 + 0.5) / m as f64) * 0.4 / m as f64)
            .sum();
        within(count, mass, &format!("numbers, bin {b}"));
    }

    // An integer 10, 30, …, 90 (its grid is not the step's multiples).
    let p = Parzen::integer(10.0, 90.0, 20.0, &[30.0, 30.0, 90.0]);
    let mut counts: HashMap<i64, usize> = HashMap::new();
    for _ in 0..n {
        let x = p.sample(&mut rng);
        assert!(
            x.fract() == 0.0 && (10.0..=90.0).contains(&x) && x as i64 % 20 == 10,
            "{x} is not on the grid 10, 30, …, 90"
        );
        *counts.entry(x as i64).or_default() += 1;
    }
    for k in (10..=90).step_by(20) {
        let count = counts.get(&k).copied().unwrap_or(0);
        within(count, p.pdf(k as f64), &format!("integer {k}"));
    }

    // Four categories.
    let p = Parzen::categorical(4, &[3.0, 1.0, 3.0]);
    let mut counts = [0usize; 4];
    for _ in 0..n {
        counts[p.sample(&mut rng) as usize] += 1;
    }
    for (c, &count) in counts.iter().enumerate() {
        within(count, p.pdf(c as f64), &format!("category {c}"));
    }
}

/// For each parameter TPE proposes, among its draws from l, the one with the largest l(x)/g(x),
/// with l fitted to the best γ(n) results and g to the rest. Of 40 results, the best used relu,
/// the next three gelu (γ(40) = 4 good) and the other 36 elu: gelu has the largest ratio
/// (three good kernels, no bad one), so nearly every proposal takes it, where a draw from l alone
/// would take it about 40% of the time, and a bad set that kept some of the good results would
/// favour relu.
#[test]
fn tpe_proposes_the_candidate_with_the_largest_ratio() {
    use fastfc::model::{Activation, Hyperparams};
    use fastfc::strategy::tpe::{Dims, Model};
    use rand::SeedableRng;
    let space = SearchSpace::default();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
    let history: Vec<(Hyperparams, f64)> = (0..40)
        .map(|i| {
            let mut hp = space.sample(&mut rng);
            // The best are the newest, which weigh fully in either set (older ones weigh less
            // once a set holds more than 25).
            hp.activation = match i {
                39 => Activation::Relu,
                36..=38 => Activation::Gelu,
                _ => Activation::Elu,
            };
            (hp, 0.5 + i as f64 / 100.0)
        })
        .collect();
    let model = Model::fit(&Dims::new(&space), &history, Split::Optuna, 64);
    let mut counts: HashMap<Activation, usize> = HashMap::new();
    for _ in 0..200 {
        *counts.entry(model.sample(&mut rng).activation).or_default() += 1;
    }
    let gelu = counts.get(&Activation::Gelu).copied().unwrap_or(0);
    assert!(gelu >= 190, "gelu in {gelu} of 200 proposals: {counts:?}");
}

/// TPE names itself, plans trials × epochs, reports the time it spends proposing, and draws
/// its first `startup_trials` configurations at random (each trial's own stream), even once
/// results are in; only after them does the model propose.
#[test]
fn tpe_names_plans_and_times_itself_and_starts_at_random() {
    use fastfc::strategy::tpe::trial_rng;
    let space = SearchSpace::default();
    let settings = TpeSettings {
        startup_trials: 4,
        ..tpe_settings(1)
    };
    let mut tpe = Tpe::new(&space, 12, 3, 7, settings).unwrap();
    assert_eq!(tpe.name(), "tpe");
    let plan = tpe.plan();
    assert_eq!((plan.runs, plan.epochs), (12, 36));
    let started = std::time::Instant::now();
    let reqs = drive(&mut tpe, &|q| known_optimum(&q.hp));
    let wall = started.elapsed().as_secs_f64();
    assert_eq!(reqs.len(), 12);
    assert!(reqs.iter().all(|q| q.epochs == 3));
    for (t, q) in reqs.iter().enumerate() {
        let random = space.sample(&mut trial_rng(7, t as u64));
        if t < 4 {
            assert_eq!(
                q.hp, random,
                "trial {t} is a startup trial: drawn at random"
            );
        } else {
            assert_ne!(q.hp, random, "trial {t} comes from the model");
        }
    }
    let own = tpe.own_seconds();
    assert!(own > 0.0 && own <= wall, "own time {own} s of {wall} s");
    // Taking in results counts as its own time too.
    let mut tpe = Tpe::new(&space, 1, 1, 7, tpe_settings(1)).unwrap();
    let Proposal::Run(reqs) = tpe.propose(1) else {
        panic!("a first proposal")
    };
    let proposing = tpe.own_seconds();
    tpe.observe(&outcomes(&reqs, &|q| known_optimum(&q.hp)));
    let after = tpe.own_seconds();
    assert!(
        after >= proposing,
        "{after} s after observing, {proposing} s before"
    );
}
