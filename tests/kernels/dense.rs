//! dense_fwd / dense_bwd_x / dense_bwd_w against src/backend/cpu/dense.rs (f64 textbook loops) on
//! mixed, padded cohorts: 1×1, the search space's widths 32/48/64, sizes that are not multiples of
//! the 16-wide tile, and row counts that leave partial tiles.

use fastfc::backend::cpu::{activation, dense};
use fastfc::backend::cuda::launch::{DenseBwdW, DenseBwdX, DenseFwd};
use fastfc::backend::cuda::{AnyGpu, Gpu, Ptr};

use crate::{activations, assert_cohort, each_gpu, trial_block, trial_params, Cohort};

/// (trials, depth, widths, inputs, classes, rows)
type Case = (usize, usize, &'static [usize], usize, usize, usize);

const CASES: [Case; 5] = [
    (2, 1, &[1], 1, 1, 1),
    (7, 3, &[32, 48, 64], 64, 10, 32),
    // Eleven trials: every activation, sigmoid (7) and softplus (9) among them, whose padded
    // units the kernels must zero (f(0) ≠ 0); widths mixed so every trial has padding.
    (11, 2, &[20, 33, 48], 17, 10, 19),
    (4, 2, &[33, 20], 17, 10, 45),
    (3, 2, &[64], 64, 10, 7),
];

/// f32 accumulation of n products: |error| ≤ about 2n·u·Σ|terms| (u = 2⁻²⁴); `mag` is Σ|terms|.
fn dot_tol(n: usize, mag: f64) -> f64 {
    2.0 * (n as f64 + 2.0) * 6e-8 * mag + 1e-30
}

/// Runs `check(case, rows, cohort, params, gpu, slots, params on the device)` for every case on
/// every device.
fn each_case(seed: u64, check: impl Fn(usize, usize, &Cohort, &[f32], &AnyGpu, Ptr, Ptr)) {
    for (case, &(trials, depth, widths, inputs, classes, rows)) in CASES.iter().enumerate() {
        let c = Cohort::mixed(trials, depth, widths, inputs, classes, seed + case as u64);
        let params = c.arena(seed * 7 + case as u64);
        each_gpu(|g| {
            let slots = g.upload(&c.slots).unwrap();
            let p = g.upload(&params).unwrap();
            check(case, rows, &c, &params, g, slots.ptr(), p.ptr());
        });
    }
}

/// The input of layer `l`: one block every trial shares for layer 0 (the network input), per-trial
/// padded activations deeper. Returns it and whether it is shared (x_tstride = 0).
fn layer_input(c: &Cohort, l: usize, rows: usize, seed: u64) -> (Vec<f32>, bool) {
    let x = activations(c, l, rows, seed + l as u64);
    if l == 0 {
        (x[..rows * c.pad.dims[0]].to_vec(), true)
    } else {
        (x, false)
    }
}

#[test]
fn dense_fwd_matches_cpu_with_fused_bias_and_activation() {
    each_case(100, |case, rows, c, params, g, slots, p| {
        let (trials, depth) = (c.trials(), c.pad.layers() - 1);
        let dev = g.name();
        for l in 0..=depth {
            let (pi, po) = (c.pad.dims[l], c.pad.dims[l + 1]);
            let (x, shared) = layer_input(c, l, rows, 50);
            let xb = g.upload(&x).unwrap();
            let z = g.upload(&vec![f32::NAN; trials * rows * po]).unwrap();
            let y = g.upload(&vec![f32::NAN; trials * rows * po]).unwrap();
            let hidden = l < depth;
            let k = DenseFwd {
                slots,
                w_off: c.pad.w_off[l] as u32,
                b_off: c.pad.b_off[l] as u32,
                rows: rows as i32,
                n_in: pi as i32,
                n_out: po as i32,
                x: xb.ptr(),
                x_tstride: if shared { 0 } else { (rows * pi) as u32 },
                params: p,
                z: z.ptr(),
                y: if hidden { y.ptr() } else { Ptr::NULL },
                mode: if hidden { 1 + l as i32 } else { 0 },
                skip_inactive: 0,
            };
            g.launch(&k.launch(trials as u32)).unwrap();
            let (zg, yg) = (g.read(&z).unwrap(), g.read(&y).unwrap());
            let mut want_z = vec![];
            let mut want_y = vec![];
            let mut mags = vec![];
            for t in 0..trials {
                let (ni, no) = (c.width(t, l), c.width(t, l + 1));
                let xt = trial_block(&x, if shared { 0 } else { t }, rows, pi, ni);
                let pt = trial_params(c, params, t);
                let (w, b) = (&pt[c.own[t].w_range(l)], &pt[c.own[t].b_range(l)]);
                let mut zt = vec![0f64; rows * no];
                dense::fwd(&xt, w, b, &mut zt, rows, ni, no);
                let mut mag = vec![0f64; rows * no];
                for r in 0..rows {
                    for o in 0..no {
                        mag[r * no + o] = b[o].abs()
                            + (0..ni)
                                .map(|i| (xt[r * ni + i] * w[o * ni + i]).abs())
                                .sum::<f64>();
                    }
                }
                let mut yt = vec![0f64; rows * no];
                activation::fwd(c.specs[t].hp.activation, &zt, &mut yt);
                want_z.push(zt);
                want_y.push(yt);
                mags.push(mag);
            }
            let tag = format!("dense_fwd case {case} layer {l} ({rows}x{pi}->{po})");
            let w_of = |t: usize| c.width(t, l + 1);
            let n = pi;
            assert_cohort(
                &format!("{tag} z"),
                &dev,
                &zg,
                &want_z,
                rows,
                po,
                w_of,
                |t, i, _| dot_tol(n, mags[t][i]),
                0.0,
            );
            if hidden {
                // f' ≤ 1.13 for all six; plus the activation's own rounding (a few ulp).
                assert_cohort(
                    &format!("{tag} y"),
                    &dev,
                    &yg,
                    &want_y,
                    rows,
                    po,
                    w_of,
                    |t, i, want| 1.2 * dot_tol(n, mags[t][i]) + 4e-7 * want.abs() + 3e-7,
                    0.0,
                );
            } else {
                assert!(
                    yg.iter().all(|v| v.is_nan()),
                    "{tag}: y written for the output layer (y = null)"
                );
            }
        }
    });
}

#[test]
fn dense_bwd_x_matches_cpu_through_mask_and_activation() {
    each_case(200, |case, rows, c, params, g, slots, p| {
        let (trials, depth) = (c.trials(), c.pad.layers() - 1);
        let dev = g.name();
        for l in 1..=depth {
            let (pi, po) = (c.pad.dims[l], c.pad.dims[l + 1]);
            let dy = activations(c, l + 1, rows, 70 + l as u64);
            let zin = activations(c, l, rows, 80 + l as u64);
            // y = f(z) and a dropout-like mask {0, 1/(1-p)} for the layer below.
            let mut yin = vec![0f32; zin.len()];
            let mut mask = vec![0f32; zin.len()];
            for t in 0..trials {
                let s = t * rows * pi..(t + 1) * rows * pi;
                activation::fwd(
                    c.specs[t].hp.activation,
                    &zin[s.clone()],
                    &mut yin[s.clone()],
                );
                for (i, m) in mask[s].iter_mut().enumerate() {
                    *m = if (i * 7 + t) % 5 == 0 { 0.0 } else { 1.25 };
                }
            }
            for fused in [true, false] {
                let (dyb, mb, zb, yb) = (
                    g.upload(&dy).unwrap(),
                    g.upload(&mask).unwrap(),
                    g.upload(&zin).unwrap(),
                    g.upload(&yin).unwrap(),
                );
                let dx = g.upload(&vec![f32::NAN; trials * rows * pi]).unwrap();
                let k = DenseBwdX {
                    slots,
                    w_off: c.pad.w_off[l] as u32,
                    rows: rows as i32,
                    n_in: pi as i32,
                    n_out: po as i32,
                    dy: dyb.ptr(),
                    params: p,
                    mask: if fused { mb.ptr() } else { Ptr::NULL },
                    z: zb.ptr(),
                    y: yb.ptr(),
                    dx: dx.ptr(),
                    mode: if fused { l as i32 } else { 0 },
                };
                g.launch(&k.launch(trials as u32)).unwrap();
                let got = g.read(&dx).unwrap();
                let mut want = vec![];
                let mut mags = vec![];
                for t in 0..trials {
                    let (ni, no) = (c.width(t, l), c.width(t, l + 1));
                    let dyt = trial_block(&dy, t, rows, po, no);
                    let pt = trial_params(c, params, t);
                    let w = &pt[c.own[t].w_range(l)];
                    let mut gx = vec![0f64; rows * ni];
                    dense::bwd_x(&dyt, w, &mut gx, rows, ni, no);
                    let mut mag = vec![0f64; rows * ni];
                    for r in 0..rows {
                        for i in 0..ni {
                            mag[r * ni + i] = (0..no)
                                .map(|o| (dyt[r * no + o] * w[o * ni + i]).abs())
                                .sum();
                        }
                    }
                    if fused {
                        let m = trial_block(&mask, t, rows, pi, ni);
                        let z = trial_block(&zin, t, rows, pi, ni);
                        let y = trial_block(&yin, t, rows, pi, ni);
                        let gm: Vec<f64> = gx.iter().zip(&m).map(|(a, b)| a * b).collect();
                        activation::bwd(c.specs[t].hp.activation, &z, &y, &gm, &mut gx);
                        for (mg, mk) in mag.iter_mut().zip(&m) {
                            *mg *= mk * 1.2;
                        }
                    }
                    want.push(gx);
                    mags.push(mag);
                }
                let n = po;
                assert_cohort(
                    &format!("dense_bwd_x case {case} layer {l} fused {fused} ({rows}x{po}->{pi})"),
                    &dev,
                    &got,
                    &want,
                    rows,
                    pi,
                    |t| c.width(t, l),
                    |t, i, want| dot_tol(n, mags[t][i]) + 4e-7 * want.abs() + 1e-7,
                    0.0,
                );
            }
        }
    });
}

#[test]
fn dense_bwd_w_matches_cpu_and_writes_only_its_layer() {
    each_case(300, |case, rows, c, _, g, slots, _| {
        let (trials, depth) = (c.trials(), c.pad.layers() - 1);
        let dev = g.name();
        for l in 0..=depth {
            let (pi, po) = (c.pad.dims[l], c.pad.dims[l + 1]);
            let (x, shared) = layer_input(c, l, rows, 90);
            let dy = activations(c, l + 1, rows, 95 + l as u64);
            let (xb, dyb) = (g.upload(&x).unwrap(), g.upload(&dy).unwrap());
            let grads = g.upload(&vec![f32::NAN; trials * c.stride]).unwrap();
            let k = DenseBwdW {
                slots,
                w_off: c.pad.w_off[l] as u32,
                b_off: c.pad.b_off[l] as u32,
                rows: rows as i32,
                n_in: pi as i32,
                n_out: po as i32,
                dy: dyb.ptr(),
                x: xb.ptr(),
                x_tstride: if shared { 0 } else { (rows * pi) as u32 },
                grads: grads.ptr(),
            };
            g.launch(&k.launch(trials as u32)).unwrap();
            let got = g.read(&grads).unwrap();
            let tag = format!("dense_bwd_w case {case} layer {l} ({rows} rows, {pi}->{po})");
            for t in 0..trials {
                let (ni, no) = (c.width(t, l), c.width(t, l + 1));
                let xt = trial_block(&x, if shared { 0 } else { t }, rows, pi, ni);
                let dyt = trial_block(&dy, t, rows, po, no);
                let (mut dw, mut db) = (vec![0f64; no * ni], vec![0f64; no]);
                dense::bwd_w(&dyt, &xt, &mut dw, &mut db, rows, ni, no);
                let base = t * c.stride;
                for (i, &v) in got[base..base + c.stride].iter().enumerate() {
                    let in_w = (c.pad.w_off[l]..c.pad.b_off[l]).contains(&i);
                    let in_b = (c.pad.b_off[l]..c.pad.b_off[l] + po).contains(&i);
                    let (want, tol) = if in_w {
                        let (o, ii) = ((i - c.pad.w_off[l]) / pi, (i - c.pad.w_off[l]) % pi);
                        if o < no && ii < ni {
                            let mag: f64 = (0..rows)
                                .map(|r| (dyt[r * no + o] * xt[r * ni + ii]).abs())
                                .sum();
                            (dw[o * ni + ii], dot_tol(rows, mag))
                        } else {
                            (0.0, 0.0)
                        }
                    } else if in_b {
                        let o = i - c.pad.b_off[l];
                        if o < no {
                            let mag: f64 = (0..rows).map(|r| dyt[r * no + o].abs()).sum();
                            (db[o], dot_tol(rows, mag))
                        } else {
                            (0.0, 0.0)
                        }
                    } else {
                        assert!(v.is_nan(), "{tag} on {dev}: trial {t} arena element {i} outside the layer was written ({v})");
                        continue;
                    };
                    assert!(
                            ((v as f64) - want).abs() <= tol,
                            "{tag} on {dev}: trial {t} arena element {i}: got {v} vs want {want} (tolerance {tol:e})"
                        );
                }
            }
        }
    });
}

#[test]
fn inactive_trials_are_skipped_in_training() {
    let c = Cohort::mixed(3, 1, &[32], 8, 10, 9);
    let mut slots = c.slots.clone();
    slots[1].active = 0;
    let params = c.arena(1);
    each_gpu(|g| {
        let s = g.upload(&slots).unwrap();
        let p = g.upload(&params).unwrap();
        let rows = 20;
        let x = g.upload(&crate::common::nonzero(rows * 8, 3)).unwrap();
        let z = g.upload(&vec![f32::NAN; 3 * rows * 32]).unwrap();
        let k = DenseFwd {
            slots: s.ptr(),
            w_off: 0,
            b_off: c.pad.b_off[0] as u32,
            rows: rows as i32,
            n_in: 8,
            n_out: 32,
            x: x.ptr(),
            x_tstride: 0,
            params: p.ptr(),
            z: z.ptr(),
            y: Ptr::NULL,
            mode: 0,
            skip_inactive: 1,
        };
        g.launch(&k.launch(3)).unwrap();
        let zg = g.read(&z).unwrap();
        let per = rows * 32;
        assert!(zg[..per].iter().all(|v| v.is_finite()));
        assert!(
            zg[per..2 * per].iter().all(|v| v.is_nan()),
            "inactive trial 1 was computed"
        );
        assert!(zg[2 * per..].iter().all(|v| v.is_finite()));
    });
}
