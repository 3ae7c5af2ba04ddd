//! Anti-aliased image downsampling that reproduces `skimage.transform.resize(img, (S, S))` with its
//! defaults (the seed notebook's preprocessing):
//! 1. a separable Gaussian blur with σ = max(0, (in/out − 1)/2) per axis, truncated at 4σ
//!    (radius ⌊4σ + 0.5⌋), borders mirrored about the edge pixel (`scipy.ndimage` "mirror");
//!    each pass accumulates in f64 and stores f32, as scipy does for an f32 image;
//! 2. bilinear sampling at pixel centres (`grid_mode=True`): source coordinate
//!    `(o + 0.5)·in/out − 0.5`;
//! 3. clipping to the input's [min, max].
//!
//! Tests: synthetic images with known answers and scikit-image's own output (`tests/data.rs`).

/// Index into `0..n` with scipy's "mirror" boundary: −1 → 1, n → n − 2.
fn mirror(mut i: isize, n: usize) -> usize {
    let n = n as isize;
    if n == 1 {
        return 0;
    }
    let period = 2 * (n - 1);
    i = i.rem_euclid(period);
    (if i >= n { period - i } else { i }) as usize
}

/// Normalised Gaussian taps for σ (scipy's `_gaussian_kernel1d`, order 0, truncate 4).
fn gaussian_taps(sigma: f64) -> Vec<f64> {
    let radius = (4.0 * sigma + 0.5) as isize;
    let mut w: Vec<f64> = (-radius..=radius)
        .map(|x| (-0.5 / (sigma * sigma) * (x * x) as f64).exp())
        .collect();
    let s: f64 = w.iter().sum();
    w.iter_mut().for_each(|v| *v /= s);
    w
}

/// Blur along one axis of an (h, w) row-major image: `axis` 0 = down columns, 1 = along rows.
fn blur_axis(img: &[f32], h: usize, w: usize, sigma: f64, axis: usize) -> Vec<f32> {
    if sigma <= 1e-15 {
        return img.to_vec();
    }
    let taps = gaussian_taps(sigma);
    let r = (taps.len() / 2) as isize;
    let mut out = vec![0f32; h * w];
    for y in 0..h {
        for x in 0..w {
            let mut acc = 0f64;
            for (k, t) in taps.iter().enumerate() {
                let d = k as isize - r;
                let (yy, xx) = if axis == 0 {
                    (mirror(y as isize + d, h), x)
                } else {
                    (y, mirror(x as isize + d, w))
                };
                acc += t * img[yy * w + xx] as f64;
            }
            out[y * w + x] = acc as f32;
        }
    }
    out
}

/// Linear-interpolation source position for output index `o`: (lower index, upper index, weight of
/// upper), with mirrored borders.
fn sample_pos(o: usize, n_in: usize, n_out: usize) -> (usize, usize, f64) {
    let c = (o as f64 + 0.5) * n_in as f64 / n_out as f64 - 0.5;
    let f = c.floor();
    let t = c - f;
    (mirror(f as isize, n_in), mirror(f as isize + 1, n_in), t)
}

/// Resizes one (h, w) image to (out_h, out_w). Values are kept in the input's range.
pub fn resize(img: &[f32], h: usize, w: usize, out_h: usize, out_w: usize) -> Vec<f32> {
    assert_eq!(img.len(), h * w, "resize: image is not {h}x{w}");
    let sig_h = ((h as f64 / out_h as f64 - 1.0) / 2.0).max(0.0);
    let sig_w = ((w as f64 / out_w as f64 - 1.0) / 2.0).max(0.0);
    let blurred = blur_axis(&blur_axis(img, h, w, sig_h, 0), h, w, sig_w, 1);
    let (lo, hi) = img
        .iter()
        .fold((f32::INFINITY, f32::NEG_INFINITY), |(a, b), &v| {
            (a.min(v), b.max(v))
        });
    let mut out = vec![0f32; out_h * out_w];
    for oy in 0..out_h {
        let (y0, y1, ty) = sample_pos(oy, h, out_h);
        for ox in 0..out_w {
            let (x0, x1, tx) = sample_pos(ox, w, out_w);
            let p = |y: usize, x: usize| blurred[y * w + x] as f64;
            let v = (1.0 - ty) * ((1.0 - tx) * p(y0, x0) + tx * p(y0, x1))
                + ty * ((1.0 - tx) * p(y1, x0) + tx * p(y1, x1));
            out[oy * out_w + ox] = (v as f32).clamp(lo, hi);
        }
    }
    out
}

/// Resizes each (h, w) image of a stack of f32 images (row-major, one after another) to (s, s).
pub fn resize_stack(x: &[f32], h: usize, w: usize, s: usize) -> Vec<f32> {
    x.chunks_exact(h * w)
        .flat_map(|img| resize(img, h, w, s, s))
        .collect()
}

/// Scales u8 pixels to [0, 1] (÷255 in f32, as the seed does) and resizes each (h, w) image of a
/// stack to (s, s). Returns `n × s²` floats.
pub fn preprocess_stack(pixels: &[u8], n: usize, h: usize, w: usize, s: usize) -> Vec<f32> {
    use rayon::prelude::*;
    let mut out = vec![0f32; n * s * s];
    out.par_chunks_mut(s * s).enumerate().for_each(|(i, dst)| {
        let img: Vec<f32> = pixels[i * h * w..(i + 1) * h * w]
            .iter()
            .map(|&p| p as f32 / 255.0)
            .collect();
        if s == h && s == w {
            dst.copy_from_slice(&img);
        } else {
            dst.copy_from_slice(&resize(&img, h, w, s, s));
        }
    });
    out
}
