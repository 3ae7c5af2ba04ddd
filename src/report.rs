//! `fastfc report DIR [DIR…]`: plots that answer the seed's question — does Hyperband converge
//! faster than random search, and is it better? — from study journals, as SVG and PNG:
//! `convergence.{svg,png}` (best-so-far validation accuracy against wall time and against epochs
//! trained, one line per study) and `by_hyperparameter.{svg,png}` (validation accuracy by
//! learning rate and dropout, on the axis scale the study's space draws them, and by activation,
//! optimizer, depth and width; the studies' legend under the panels). Text goes through the
//! embedded DejaVu Sans font.
//!
//! What mattered: `importance.{svg,png}` (each hyperparameter's importance, PED-ANOVA, see
//! [`importance`]; not written, with a line saying why, when no study has enough trials) and
//! `parallel_coordinates.{svg,png}` (one line per trial across its hyperparameters to its
//! validation accuracy, coloured by that accuracy, best on top).

pub mod importance;

use std::ops::Range;
use std::path::{Path, PathBuf};

use plotters::coord::ranged1d::{AsRangedCoord, ValueFormatter};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::error::{Error, IoContext, Result};
use crate::results::journal::{self, RunRecord};
use crate::space::{Num, SearchSpace};

/// A record's position on an x axis, and a record's category.
type XOf = fn(&RunRecord) -> f64;
type KeyOf = Box<dyn Fn(&RunRecord) -> String>;

static FONT: &[u8] = include_bytes!("../assets/fonts/DejaVuSans.ttf");

/// One study as the report sees it.
pub struct Study {
    pub label: String,
    pub records: Vec<RunRecord>,
    /// The space its trials were drawn from: it says which parameters are read on a log scale.
    pub space: SearchSpace,
}

pub fn load(dir: &Path) -> Result<Study> {
    let records = journal::read(dir)?;
    if records.is_empty() {
        return Err(Error::file(
            dir.join("journal.jsonl"),
            "no finished runs (is this a study folder?)",
        ));
    }
    let study = dir.join("study.json");
    let config = std::fs::read_to_string(&study)
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .unwrap_or_default();
    let strategy = config["strategy"].as_str().unwrap_or("study");
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    Ok(Study {
        label: format!("{strategy} ({name})"),
        records,
        space: space_of(&study, config["space"].as_str()),
    })
}

/// The space a study's TOML text describes; none, or "", is the default space. Other text (the
/// `space` of an older fastfc's study.json is a Rust debug string) falls back to the default,
/// with a note, since the scales the report reads parameters on are then the default's.
fn space_of(origin: &Path, toml: Option<&str>) -> SearchSpace {
    match toml.map(str::trim) {
        None | Some("") => SearchSpace::default(),
        Some(text) => SearchSpace::parse(Path::new("space"), text).unwrap_or_else(|e| {
            eprintln!(
                "note: {}: the study's space is not a search space in TOML ({e}); reading learning rate and dropout on the default space's scales",
                origin.display()
            );
            SearchSpace::default()
        }),
    }
}

/// A study shared through PostgreSQL, by name.
pub fn load_shared(url: &crate::results::postgres::PgUrl, name: &str) -> Result<Study> {
    let mut s = crate::results::postgres::SharedStudy::open(
        url,
        name,
        None,
        std::time::Duration::from_secs(30),
    )?;
    let records = s.records()?;
    if records.is_empty() {
        return Err(Error::flag(
            "--study",
            format!("{name:?}: no finished runs yet"),
        ));
    }
    Ok(Study {
        label: format!("{} ({name})", s.config.strategy),
        records,
        space: space_of(Path::new(&format!("study {name:?}")), Some(&s.space)),
    })
}

/// Best-so-far curve: (x, best val_accuracy) at each run's finish, ordered by x.
pub fn best_so_far(records: &[RunRecord], x: impl Fn(&RunRecord) -> f64) -> Vec<(f64, f64)> {
    let mut pts: Vec<(f64, f64)> = records.iter().map(|r| (x(r), r.val_accuracy)).collect();
    pts.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut best = 0f64;
    pts.into_iter()
        .map(|(t, v)| {
            best = best.max(v);
            (t, best)
        })
        .collect()
}

fn register_font() {
    use std::sync::Once;
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = plotters::style::register_font("sans-serif", FontStyle::Normal, FONT);
    });
}

fn plot_err(what: &str, e: impl std::fmt::Display) -> Error {
    Error::backend("report", format!("{what}: {e}"))
}

fn convergence<DB: DrawingBackend>(root: DrawingArea<DB, Shift>, studies: &[Study]) -> Result<()>
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE).map_err(|e| plot_err("fill", e))?;
    let panels = root.split_evenly((1, 2));
    let axes: [(&str, XOf); 2] = [
        ("wall time (s)", |r| r.study_seconds),
        ("epochs trained (all trials)", |r| r.study_epochs as f64),
    ];
    // Zoom on the curves: from just below the first best-so-far value of any study.
    let firsts: Vec<f64> = studies
        .iter()
        .filter_map(|s| {
            best_so_far(&s.records, |r| r.study_seconds)
                .first()
                .map(|p| p.1)
        })
        .collect();
    let lo = (firsts.iter().cloned().fold(1.0, f64::min) - 0.01).max(0.0);
    let hi = studies
        .iter()
        .flat_map(|s| s.records.iter().map(|r| r.val_accuracy))
        .fold(lo + 0.02, f64::max)
        + 0.005;
    for (panel, (xlabel, xf)) in panels.iter().zip(axes) {
        let curves: Vec<Vec<(f64, f64)>> = studies
            .iter()
            .map(|s| best_so_far(&s.records, xf))
            .collect();
        let xmax = curves.iter().flatten().map(|p| p.0).fold(1.0, f64::max) * 1.05;
        let mut chart = ChartBuilder::on(panel)
            .caption(
                format!("best validation accuracy vs {xlabel}"),
                ("sans-serif", 18),
            )
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(55)
            .build_cartesian_2d(0f64..xmax, lo..hi)
            .map_err(|e| plot_err("chart", e))?;
        chart
            .configure_mesh()
            .x_desc(xlabel)
            .y_desc("best val_accuracy so far")
            .label_style(("sans-serif", 13))
            .draw()
            .map_err(|e| plot_err("mesh", e))?;
        for (i, (s, c)) in studies.iter().zip(&curves).enumerate() {
            let color = Palette99::pick(i).to_rgba();
            // Step line: the best stays flat until a better run finishes.
            let mut steps = vec![];
            for (j, &(x, y)) in c.iter().enumerate() {
                if j > 0 {
                    steps.push((x, c[j - 1].1));
                }
                steps.push((x, y));
            }
            chart
                .draw_series(LineSeries::new(steps, color.stroke_width(2)))
                .map_err(|e| plot_err("line", e))?
                .label(s.label.clone())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2))
                });
            chart
                .draw_series(c.iter().map(|&p| Circle::new(p, 2, color.filled())))
                .map_err(|e| plot_err("points", e))?;
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .label_font(("sans-serif", 13))
            .draw()
            .map_err(|e| plot_err("legend", e))?;
    }
    root.present().map_err(|e| plot_err("present", e))
}

/// The last run of each trial (a Hyperband trial's longest), in trial order.
fn last_runs(records: &[RunRecord]) -> Vec<&RunRecord> {
    let mut last: std::collections::BTreeMap<u64, &RunRecord> = Default::default();
    for r in records {
        let e = last.entry(r.request.trial_id).or_insert(r);
        if r.request.epochs >= e.request.epochs {
            *e = r;
        }
    }
    last.into_values().collect()
}

/// Each study's last runs by category, as (category, val_accuracy, study), categories sorted.
fn by_param(
    runs: &[Vec<&RunRecord>],
    key: &dyn Fn(&RunRecord) -> String,
) -> (Vec<String>, Vec<(usize, f64, usize)>) {
    let mut cats: Vec<String> = vec![];
    let mut pts = vec![];
    for (si, rs) in runs.iter().enumerate() {
        for r in rs {
            let k = key(r);
            let ci = cats.iter().position(|c| *c == k).unwrap_or_else(|| {
                cats.push(k.clone());
                cats.len() - 1
            });
            pts.push((ci, r.val_accuracy, si));
        }
    }
    let mut order: Vec<usize> = (0..cats.len()).collect();
    order.sort_by(|&a, &b| cats[a].cmp(&cats[b]));
    let rank: Vec<usize> = (0..cats.len())
        .map(|c| order.iter().position(|&o| o == c).unwrap())
        .collect();
    let sorted: Vec<String> = order.iter().map(|&i| cats[i].clone()).collect();
    (
        sorted,
        pts.into_iter().map(|(c, v, s)| (rank[c], v, s)).collect(),
    )
}

/// Pixel height of one row of the studies' legend under the panels.
const LEGEND_ROW: u32 = 28;

/// Where each study's legend entry goes: (x in pixels, row), rows wrapped at the area's width.
fn legend_layout<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    studies: &[Study],
    font: &TextStyle,
) -> Result<Vec<(i32, u32)>>
where
    DB::ErrorType: 'static,
{
    let width = area.dim_in_pixel().0 as i32;
    let (mut x, mut row) = (40, 0);
    let mut at = vec![];
    for s in studies {
        let (tw, _) = area
            .estimate_text_size(&s.label, font)
            .map_err(|e| plot_err("legend", e))?;
        let w = 16 + tw as i32 + 30;
        if x > 40 && x + w > width {
            (x, row) = (40, row + 1);
        }
        at.push((x, row));
        x += w;
    }
    Ok(at)
}

/// A panel's val_accuracy range, the same for every panel: from just below the worst trial.
fn accuracy_range(runs: &[Vec<&RunRecord>]) -> Range<f64> {
    let lo = runs
        .iter()
        .flatten()
        .map(|r| r.val_accuracy)
        .fold(1.0, f64::min)
        .max(0.0);
    (lo - 0.01)..0.9f64.max(lo + 0.05)
}

/// A numeric parameter's panel: each trial's value against its val_accuracy, on `x` (a linear
/// or a log axis).
fn scatter_panel<DB, X>(
    panel: &DrawingArea<DB, Shift>,
    name: &str,
    x: X,
    y: Range<f64>,
    runs: &[Vec<(f64, f64)>],
) -> Result<()>
where
    DB: DrawingBackend,
    DB::ErrorType: 'static,
    X: AsRangedCoord<Value = f64>,
    X::CoordDescType: ValueFormatter<f64>,
{
    let mut chart = ChartBuilder::on(panel)
        .caption(format!("validation accuracy by {name}"), ("sans-serif", 17))
        .margin(10)
        .x_label_area_size(35)
        .y_label_area_size(55)
        .build_cartesian_2d(x, y)
        .map_err(|e| plot_err("chart", e))?;
    chart
        .configure_mesh()
        .y_desc("val_accuracy")
        .label_style(("sans-serif", 13))
        .draw()
        .map_err(|e| plot_err("mesh", e))?;
    for (si, pts) in runs.iter().enumerate() {
        let color = Palette99::pick(si).to_rgba();
        chart
            .draw_series(
                pts.iter()
                    .map(|&p| Circle::new(p, 3, color.mix(0.7).filled())),
            )
            .map_err(|e| plot_err("points", e))?;
    }
    Ok(())
}

fn hyperparams<DB: DrawingBackend>(root: DrawingArea<DB, Shift>, studies: &[Study]) -> Result<()>
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE).map_err(|e| plot_err("fill", e))?;
    // The legend has a strip of its own under the panels, so it hides no point.
    let font = TextStyle::from(("sans-serif", 14).into_font());
    let legend_at = legend_layout(&root, studies, &font)?;
    let rows = legend_at.last().map_or(0, |a| a.1 + 1);
    let (body, legend) = root.split_vertically(root.dim_in_pixel().1 - LEGEND_ROW * rows - 10);
    // The knobs a study searched get a panel each (batch size, schedule) after the seed's six.
    let searched = |f: fn(&SearchSpace) -> bool| studies.iter().any(|s| f(&s.space));
    let with_batch = searched(|s| s.knobs.batch_size.is_some());
    let with_schedule = searched(|s| s.knobs.schedule.is_some());
    let extra = with_batch as usize + with_schedule as usize;
    let panels = body.split_evenly((3 + extra.div_ceil(2), 2));
    let runs: Vec<Vec<&RunRecord>> = studies.iter().map(|s| last_runs(&s.records)).collect();
    let y = accuracy_range(&runs);

    type NumOf = (
        &'static str,
        fn(&SearchSpace) -> &Num,
        fn(&RunRecord) -> f64,
    );
    let nums: [NumOf; 2] = [
        (
            "learning rate",
            |s| &s.learning_rate,
            |r| r.request.hp.learning_rate as f64,
        ),
        ("dropout", |s| &s.dropout, |r| r.request.hp.dropout as f64),
    ];
    for (panel, (name, num, of)) in panels.iter().zip(nums) {
        let pts: Vec<Vec<(f64, f64)>> = runs
            .iter()
            .map(|rs| {
                rs.iter()
                    .map(|r| (of(r), r.val_accuracy))
                    .filter(|p| p.0.is_finite() && p.1.is_finite())
                    .collect()
            })
            .collect();
        let xs = || pts.iter().flatten().map(|p| p.0);
        let (lo, hi) = (
            xs().fold(f64::INFINITY, f64::min),
            xs().fold(f64::NEG_INFINITY, f64::max),
        );
        let (lo, hi) = if lo <= hi { (lo, hi) } else { (0.0, 1.0) };
        // A log axis where a study's space draws the parameter log-uniformly (there a linear
        // axis would crowd most trials at its left end).
        if studies.iter().any(|s| num(&s.space).is_log()) && lo > 0.0 {
            let pad = if hi > lo { (hi / lo).powf(0.05) } else { 2.0 };
            let x = (lo / pad..hi * pad).log_scale();
            scatter_panel(panel, &format!("{name} (log scale)"), x, y.clone(), &pts)?;
        } else {
            let pad = if hi > lo {
                0.05 * (hi - lo)
            } else {
                0.5 * lo.abs().max(0.02)
            };
            scatter_panel(panel, name, lo - pad..hi + pad, y.clone(), &pts)?;
        }
    }

    let mut keys: Vec<(&str, KeyOf)> = vec![
        (
            "activation",
            Box::new(|r| r.request.hp.activation.name().to_string()),
        ),
        (
            "optimizer",
            Box::new(|r| r.request.hp.optimizer.name().to_string()),
        ),
        (
            "hidden layers",
            Box::new(|r| r.request.hp.hidden.len().to_string()),
        ),
        (
            "width",
            Box::new(|r| r.request.hp.hidden.iter().max().unwrap().to_string()),
        ),
    ];
    if with_batch {
        keys.push((
            "batch size",
            Box::new(|r| {
                r.request
                    .hp
                    .batch_size
                    .map_or("study's".to_string(), |b| b.to_string())
            }),
        ));
    }
    if with_schedule {
        keys.push((
            "schedule",
            Box::new(|r| r.request.hp.schedule.name().to_string()),
        ));
    }
    for (panel, (name, key)) in panels[nums.len()..].iter().zip(keys.iter()) {
        let (cats, pts) = by_param(&runs, key.as_ref());
        let n = cats.len();
        let mut chart = ChartBuilder::on(panel)
            .caption(format!("validation accuracy by {name}"), ("sans-serif", 17))
            .margin(10)
            .x_label_area_size(35)
            .y_label_area_size(55)
            .build_cartesian_2d(-0.5f64..n as f64 - 0.5, y.clone())
            .map_err(|e| plot_err("chart", e))?;
        let labels = cats.clone();
        chart
            .configure_mesh()
            .x_labels(n)
            .x_label_formatter(&move |x| {
                let i = x.round();
                if (x - i).abs() < 1e-6 && i >= 0.0 && (i as usize) < labels.len() {
                    labels[i as usize].clone()
                } else {
                    String::new()
                }
            })
            .y_desc("val_accuracy")
            .label_style(("sans-serif", 13))
            .draw()
            .map_err(|e| plot_err("mesh", e))?;
        for si in 0..studies.len() {
            let color = Palette99::pick(si).to_rgba();
            let offset = (si as f64 - (studies.len() as f64 - 1.0) / 2.0) * 0.15;
            chart
                .draw_series(pts.iter().filter(|p| p.2 == si).enumerate().map(|(j, p)| {
                    Circle::new(
                        (p.0 as f64 + offset + ((j % 7) as f64 - 3.0) * 0.012, p.1),
                        3,
                        color.mix(0.7).filled(),
                    )
                }))
                .map_err(|e| plot_err("points", e))?;
        }
    }

    for ((si, s), (x, row)) in studies.iter().enumerate().zip(legend_at) {
        let color = Palette99::pick(si).to_rgba();
        let y = (LEGEND_ROW * row + LEGEND_ROW / 2) as i32;
        legend
            .draw(&Circle::new((x, y), 5, color.filled()))
            .map_err(|e| plot_err("legend", e))?;
        legend
            .draw(&Text::new(
                s.label.clone(),
                (x + 12, y),
                font.clone().pos(Pos::new(HPos::Left, VPos::Center)),
            ))
            .map_err(|e| plot_err("legend", e))?;
    }
    root.present().map_err(|e| plot_err("present", e))
}

/// Bars of each study's importances (studies with too few trials are left out).
fn importance_plot<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    studies: &[Study],
) -> Result<()>
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE).map_err(|e| plot_err("fill", e))?;
    let params = importance_params(studies);
    let n = params.len();
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "hyperparameter importance (PED-ANOVA: top 10% of trials vs all)",
            ("sans-serif", 20),
        )
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(110)
        .build_cartesian_2d(0f64..1f64, -0.5f64..n as f64 - 0.5)
        .map_err(|e| plot_err("chart", e))?;
    chart
        .configure_mesh()
        .y_labels(n)
        .y_label_formatter(&|y| {
            let i = y.round();
            if (y - i).abs() < 1e-6 && i >= 0.0 && (i as usize) < n {
                params[n - 1 - i as usize].to_string()
            } else {
                String::new()
            }
        })
        .x_desc("importance (sums to 1 per study)")
        .label_style(("sans-serif", 14))
        .draw()
        .map_err(|e| plot_err("mesh", e))?;
    let k = studies.len().max(1) as f64;
    let h = 0.8 / k;
    for (si, s) in studies.iter().enumerate() {
        let Some(imp) = importance::importances(&s.records, &s.space) else {
            continue;
        };
        let color = Palette99::pick(si).to_rgba();
        chart
            .draw_series(imp.iter().map(|(p, v)| {
                let row = n - 1 - params.iter().position(|q| q == p).unwrap();
                let y0 = row as f64 - 0.4 + si as f64 * h;
                Rectangle::new([(0.0, y0), (*v, y0 + h * 0.9)], color.filled())
            }))
            .map_err(|e| plot_err("bars", e))?
            .label(s.label.clone())
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], color.filled()));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .label_font(("sans-serif", 13))
        .draw()
        .map_err(|e| plot_err("legend", e))?;
    root.present().map_err(|e| plot_err("present", e))
}

/// A trial's position on an axis.
type Position = Box<dyn Fn(&RunRecord) -> Option<f64>>;

/// One axis of the parallel-coordinates plot.
struct Axis {
    name: &'static str,
    /// The trial's position on it (`None`: the trial has no such parameter, as a conditional knob
    /// its optimizer or schedule lacks; drawn at the "n/a" mark below the axis).
    value: Position,
    /// How a position reads (numbers: their value to three decimals).
    label: Option<fn(f64) -> String>,
    /// A label per whole position (a category) instead of the two ends.
    categorical: bool,
}

/// Where a trial without the axis's parameter is drawn, below the axis' 0..1.
const NOT_APPLICABLE: f64 = -0.08;

/// The axes of a study: the seed's six hyperparameters, the knobs its space searched, then the
/// validation accuracy.
fn parallel_axes(space: &SearchSpace) -> Vec<Axis> {
    let hp = |f: fn(&crate::model::Hyperparams) -> f64| -> Position {
        Box::new(move |r| Some(f(&r.request.hp)))
    };
    let num = |name, value| Axis {
        name,
        value,
        label: None,
        categorical: false,
    };
    let mut axes = vec![
        num("hidden layers", hp(|h| h.hidden.len() as f64)),
        num("width", hp(|h| *h.hidden.iter().max().unwrap_or(&0) as f64)),
        num("dropout", hp(|h| h.dropout as f64)),
        Axis {
            label: Some(|v| format!("{:.1e}", 10f64.powf(v))),
            ..num("learning rate", hp(|h| (h.learning_rate as f64).log10()))
        },
        Axis {
            label: Some(|v| {
                crate::model::Activation::ALL
                    .get(v.round() as usize)
                    .map_or(String::new(), |a| a.name().to_string())
            }),
            categorical: true,
            ..num("activation", hp(|h| h.activation as usize as f64))
        },
        Axis {
            label: Some(|v| {
                crate::model::Optimizer::ALL
                    .get(v.round() as usize)
                    .map_or(String::new(), |o| o.name().to_string())
            }),
            categorical: true,
            ..num("optimizer", hp(|h| h.optimizer as usize as f64))
        },
    ];
    for name in space.knobs.present() {
        let raw = move |r: &RunRecord| crate::space::knob(&r.request.hp, name);
        axes.push(match name {
            // Sizes and decays are searched on log scales: drawn on them.
            "batch_size" => Axis {
                label: Some(|v| format!("{:.0}", 2f64.powf(v))),
                ..num(name, Box::new(move |r| raw(r).map(f64::log2)))
            },
            "weight_decay" => Axis {
                label: Some(|v| format!("{:.1e}", 10f64.powf(v))),
                ..num(name, Box::new(move |r| raw(r).map(f64::log10)))
            },
            "schedule" => Axis {
                label: Some(|v| {
                    crate::schedule::Schedule::NAMES
                        .get(v.round() as usize)
                        .map_or(String::new(), |n| n.to_string())
                }),
                categorical: true,
                ..num(name, Box::new(raw))
            },
            "nesterov" => Axis {
                label: Some(|v| if v >= 0.5 { "true" } else { "false" }.to_string()),
                categorical: true,
                ..num(name, Box::new(raw))
            },
            _ => num(name, Box::new(raw)),
        });
    }
    axes.push(num("val_accuracy", Box::new(|r| Some(r.val_accuracy))));
    axes
}

/// One panel per study: every trial's hyperparameters and validation accuracy on parallel
/// axes, each scaled to the values the study tried.
fn parallel_plot<DB: DrawingBackend>(root: DrawingArea<DB, Shift>, studies: &[Study]) -> Result<()>
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE).map_err(|e| plot_err("fill", e))?;
    let panels = root.split_evenly((studies.len().max(1), 1));
    let fmt = |a: &Axis, v: f64| match a.label {
        Some(f) => f(v),
        None if a.name == "val_accuracy" => format!("{v:.4}"),
        None => format!("{v:.3}")
            .trim_end_matches('0')
            .trim_end_matches('.')
            .to_string(),
    };
    for (panel, s) in panels.iter().zip(studies) {
        let axes = parallel_axes(&s.space);
        let mut runs = importance::final_runs(&s.records);
        // Worst first, so the best lines are drawn on top.
        runs.sort_by(|a, b| crate::study::rank_records(b, a));
        // Each axis' range over the trials that have its parameter, and whether any lacks it.
        let ranges: Vec<(f64, f64, bool)> = axes
            .iter()
            .map(|a| {
                let v: Vec<Option<f64>> = runs.iter().map(|r| (a.value)(r)).collect();
                let lo = v.iter().flatten().cloned().fold(f64::INFINITY, f64::min);
                let hi = v
                    .iter()
                    .flatten()
                    .cloned()
                    .fold(f64::NEG_INFINITY, f64::max);
                let missing = v.iter().any(Option::is_none);
                if hi > lo {
                    (lo, hi, missing)
                } else if lo.is_finite() {
                    (lo - 0.5, lo + 0.5, missing)
                } else {
                    (-0.5, 0.5, missing)
                }
            })
            .collect();
        let mut chart = ChartBuilder::on(panel)
            .caption(
                format!(
                    "{}: {} trials across their hyperparameters",
                    s.label,
                    runs.len()
                ),
                ("sans-serif", 18),
            )
            .margin(20)
            .margin_top(10)
            .x_label_area_size(30)
            .build_cartesian_2d(-0.3f64..axes.len() as f64 - 0.7, -0.14f64..1.08f64)
            .map_err(|e| plot_err("chart", e))?;
        let names: Vec<&str> = axes.iter().map(|a| a.name).collect();
        chart
            .configure_mesh()
            .disable_mesh()
            .disable_y_axis()
            .x_labels(axes.len())
            .x_label_formatter(&|x| {
                let i = x.round();
                if (x - i).abs() < 1e-6 && i >= 0.0 && (i as usize) < names.len() {
                    names[i as usize].to_string()
                } else {
                    String::new()
                }
            })
            .label_style(("sans-serif", if axes.len() > 9 { 11 } else { 14 }))
            .draw()
            .map_err(|e| plot_err("mesh", e))?;
        let (acc_lo, acc_hi, _) = ranges[axes.len() - 1];
        for r in &runs {
            let t = ((r.val_accuracy - acc_lo) / (acc_hi - acc_lo)).clamp(0.0, 1.0);
            let color = HSLColor(0.7 * (1.0 - t), 0.85, 0.45);
            let pts: Vec<(f64, f64)> = axes
                .iter()
                .zip(&ranges)
                .enumerate()
                .map(|(i, (a, (lo, hi, _)))| {
                    let y = (a.value)(r).map_or(NOT_APPLICABLE, |v| (v - lo) / (hi - lo));
                    (i as f64, y)
                })
                .collect();
            chart
                .draw_series(std::iter::once(PathElement::new(
                    pts,
                    color
                        .mix(0.35 + 0.6 * t)
                        .stroke_width(if t > 0.9 { 2 } else { 1 }),
                )))
                .map_err(|e| plot_err("lines", e))?;
        }
        for (i, (a, (lo, hi, missing))) in axes.iter().zip(&ranges).enumerate() {
            let x = i as f64;
            chart
                .draw_series(std::iter::once(PathElement::new(
                    vec![(x, 0.0), (x, 1.0)],
                    BLACK.stroke_width(1),
                )))
                .map_err(|e| plot_err("axis", e))?;
            // Categories get a label each; numbers their two ends.
            let mut ticks: Vec<(f64, String)> = if a.categorical {
                let (l, h) = (lo.ceil() as i64, hi.floor() as i64);
                (l..=h)
                    .map(|v| ((v as f64 - lo) / (hi - lo), fmt(a, v as f64)))
                    .collect()
            } else {
                vec![(0.0, fmt(a, *lo)), (1.0, fmt(a, *hi))]
            };
            if *missing {
                ticks.push((NOT_APPLICABLE, "n/a".to_string()));
            }
            for (y, text) in ticks {
                chart
                    .draw_series(std::iter::once(Text::new(
                        text,
                        (x + 0.03, y + if y > 0.5 { 0.05 } else { -0.02 }),
                        ("sans-serif", 12).into_font(),
                    )))
                    .map_err(|e| plot_err("labels", e))?;
            }
        }
    }
    root.present().map_err(|e| plot_err("present", e))
}

/// The parameters the studies' importances cover: the seed's six, then every knob any of their
/// spaces searched (a study without one shows 0 there).
fn importance_params(studies: &[Study]) -> Vec<&'static str> {
    let mut v = importance::PARAMS.to_vec();
    for s in studies {
        for k in importance::params_of(&s.space) {
            if !v.contains(&k) {
                v.push(k);
            }
        }
    }
    v
}

/// The importance table for `fastfc report`.
pub fn importance_table(studies: &[Study]) -> String {
    let mut s = String::from(
        "\nhyperparameter importance (PED-ANOVA: top 10% of trials vs all, each trial at its longest run; sums to 1):\n",
    );
    s += &format!("{:<30}", "study");
    let params = importance_params(studies);
    for p in &params {
        s += &format!(" {p:>13}");
    }
    s.push('\n');
    for st in studies {
        s += &format!("{:<30}", st.label);
        match importance::importances(&st.records, &st.space) {
            Some(imp) => {
                for p in &params {
                    let v = imp.iter().find(|x| x.0 == *p).map_or(0.0, |x| x.1);
                    s += &format!(" {v:>13.3}");
                }
            }
            None => {
                s += &format!(
                    " ({} finished trials; importance needs at least {})",
                    finished_trials(st),
                    importance::MIN_TRIALS
                )
            }
        }
        s.push('\n');
    }
    s
}

/// The trials importance counts in a study (each at its longest run, with a finite accuracy).
fn finished_trials(s: &Study) -> usize {
    importance::final_runs(&s.records).len()
}

/// Draws `$plot(area, studies)` into `$out/$name.svg` and `.png` and adds both to `$files`.
macro_rules! svg_and_png {
    ($files:ident, $out:expr, $name:literal, $size:expr, $plot:ident, $studies:expr) => {{
        let p = $out.join(concat!($name, ".svg"));
        $plot(SVGBackend::new(&p, $size).into_drawing_area(), $studies)?;
        $files.push(p);
        let p = $out.join(concat!($name, ".png"));
        $plot(BitMapBackend::new(&p, $size).into_drawing_area(), $studies)?;
        $files.push(p);
    }};
}

/// Draws the figures as SVG and PNG into `out`; returns the files written. The importance plot
/// is left out, with a line on stdout saying why, when no study has enough trials for it.
pub fn draw(studies: &[Study], out: &Path) -> Result<Vec<PathBuf>> {
    register_font();
    std::fs::create_dir_all(out).ctx_io(out)?;
    let mut files = vec![];
    svg_and_png!(files, out, "convergence", (1400, 560), convergence, studies);
    svg_and_png!(
        files,
        out,
        "by_hyperparameter",
        (1200, 1250),
        hyperparams,
        studies
    );
    let short: Vec<String> = studies
        .iter()
        .map(|s| (s, finished_trials(s)))
        .filter(|(_, n)| *n < importance::MIN_TRIALS)
        .map(|(s, n)| format!("{} has {n}", s.label))
        .collect();
    if short.len() < studies.len() {
        let h = 150 + 110 * importance_params(studies).len() as u32;
        svg_and_png!(
            files,
            out,
            "importance",
            (1100, h),
            importance_plot,
            studies
        );
    } else {
        println!(
            "importance.{{svg,png}} not written: importance needs at least {} finished trials, and {}",
            importance::MIN_TRIALS,
            short.join(", ")
        );
    }
    let h = 520 * studies.len().max(1) as u32;
    svg_and_png!(
        files,
        out,
        "parallel_coordinates",
        (1400, h),
        parallel_plot,
        studies
    );
    Ok(files)
}

/// A text comparison: best, when it was reached (within 0.005 of the study's own best), cost.
pub fn table(studies: &[Study]) -> String {
    let mut s = String::from("study                          runs  best val_acc  wall s  epochs  reached best-0.005 at (s / epochs)\n");
    for st in studies {
        let best = st
            .records
            .iter()
            .map(|r| r.val_accuracy)
            .fold(0.0, f64::max);
        let wall = st
            .records
            .iter()
            .map(|r| r.study_seconds)
            .fold(0.0, f64::max);
        let epochs = st.records.iter().map(|r| r.study_epochs).max().unwrap_or(0);
        let t = best_so_far(&st.records, |r| r.study_seconds);
        let e = best_so_far(&st.records, |r| r.study_epochs as f64);
        let reach_t = t.iter().find(|p| p.1 >= best - 0.005).map_or(0.0, |p| p.0);
        let reach_e = e.iter().find(|p| p.1 >= best - 0.005).map_or(0.0, |p| p.0);
        s += &format!(
            "{:<30} {:>4}  {:>12.4}  {:>6.1}  {:>6}  {:.1} / {:.0}\n",
            st.label,
            st.records.len(),
            best,
            wall,
            epochs,
            reach_t,
            reach_e
        );
    }
    s
}
