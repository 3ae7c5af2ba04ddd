//! `fastfc report DIR [DIR…]`: plots that answer the seed's question — does Hyperband converge
//! faster than random search, and is it better? — from study journals, as SVG and PNG:
//! `convergence.{svg,png}` (best-so-far validation accuracy against wall time and against epochs
//! trained, one line per study) and `by_hyperparameter.{svg,png}` (validation accuracy by
//! activation, optimizer, depth and width). Text goes through the embedded DejaVu Sans font.

use std::path::{Path, PathBuf};

use plotters::coord::Shift;
use plotters::prelude::*;

use crate::error::{Error, IoContext, Result};
use crate::results::journal::{self, RunRecord};

/// A record's position on an x axis, and a record's category.
type XOf = fn(&RunRecord) -> f64;
type KeyOf = Box<dyn Fn(&RunRecord) -> String>;

static FONT: &[u8] = include_bytes!("../assets/fonts/DejaVuSans.ttf");

/// One study as the report sees it.
pub struct Study {
    pub label: String,
    pub records: Vec<RunRecord>,
}

pub fn load(dir: &Path) -> Result<Study> {
    let records = journal::read(dir)?;
    if records.is_empty() {
        return Err(Error::file(
            dir.join("journal.jsonl"),
            "no finished runs (is this a study folder?)",
        ));
    }
    let strategy = std::fs::read_to_string(dir.join("study.json"))
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .and_then(|v| v["strategy"].as_str().map(str::to_string))
        .unwrap_or_else(|| "study".into());
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    Ok(Study {
        label: format!("{strategy} ({name})"),
        records,
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

/// The last run of each trial (a Hyperband trial's longest), as (category, val_accuracy, study).
fn by_param(
    studies: &[Study],
    key: &dyn Fn(&RunRecord) -> String,
) -> (Vec<String>, Vec<(usize, f64, usize)>) {
    let mut cats: Vec<String> = vec![];
    let mut pts = vec![];
    for (si, s) in studies.iter().enumerate() {
        let mut last: std::collections::BTreeMap<u64, &RunRecord> = Default::default();
        for r in &s.records {
            let e = last.entry(r.request.trial_id).or_insert(r);
            if r.request.epochs >= e.request.epochs {
                *e = r;
            }
        }
        for r in last.values() {
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

fn hyperparams<DB: DrawingBackend>(root: DrawingArea<DB, Shift>, studies: &[Study]) -> Result<()>
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE).map_err(|e| plot_err("fill", e))?;
    let panels = root.split_evenly((2, 2));
    let keys: [(&str, KeyOf); 4] = [
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
    for (panel, (name, key)) in panels.iter().zip(keys.iter()) {
        let (cats, pts) = by_param(studies, key.as_ref());
        let lo = pts.iter().map(|p| p.1).fold(1.0, f64::min).max(0.0);
        let n = cats.len();
        let mut chart = ChartBuilder::on(panel)
            .caption(format!("validation accuracy by {name}"), ("sans-serif", 17))
            .margin(10)
            .x_label_area_size(35)
            .y_label_area_size(55)
            .build_cartesian_2d(-0.5f64..n as f64 - 0.5, (lo - 0.01)..0.9f64.max(lo + 0.05))
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
        for (si, s) in studies.iter().enumerate() {
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
                .map_err(|e| plot_err("points", e))?
                .label(s.label.clone())
                .legend(move |(x, y)| Circle::new((x + 8, y), 4, color.filled()));
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .label_font(("sans-serif", 12))
            .draw()
            .map_err(|e| plot_err("legend", e))?;
    }
    root.present().map_err(|e| plot_err("present", e))
}

/// Draws both figures as SVG and PNG into `out`; returns the files written.
pub fn draw(studies: &[Study], out: &Path) -> Result<Vec<PathBuf>> {
    register_font();
    std::fs::create_dir_all(out).ctx_io(out)?;
    let mut files = vec![];
    let (w, h) = (1400u32, 560u32);
    let p = out.join("convergence.svg");
    convergence(SVGBackend::new(&p, (w, h)).into_drawing_area(), studies)?;
    files.push(p);
    let p = out.join("convergence.png");
    convergence(BitMapBackend::new(&p, (w, h)).into_drawing_area(), studies)?;
    files.push(p);
    let (w, h) = (1200u32, 900u32);
    let p = out.join("by_hyperparameter.svg");
    hyperparams(SVGBackend::new(&p, (w, h)).into_drawing_area(), studies)?;
    files.push(p);
    let p = out.join("by_hyperparameter.png");
    hyperparams(BitMapBackend::new(&p, (w, h)).into_drawing_area(), studies)?;
    files.push(p);
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
