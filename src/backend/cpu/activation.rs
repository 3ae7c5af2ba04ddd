//! activation: elu, celu (α = 1), gelu (exact erf form, Keras' default), relu, selu, silu, tanh,
//! sigmoid, leaky_relu (slope 0.2), softplus, mish. y = f(z) and dz = dy·f'(z). tanh, softplus
//! and mish are written with eˣ alone (tanh z = 1 − 2/(e²ᶻ + 1); softplus z = max(z, 0) +
//! ln(1 + e^−|z|); tanh(softplus z) = w/(w + 2), w = eᶻ(eᶻ + 2)), so their loops vectorise like
//! the others; the kernels use the same forms. Reference for `kernels/activation.cu` (tests/ops/activation.rs);
//! gradient-checked in f64 in tests/gradcheck.rs.

use super::simd::simd_dispatch;
use super::Real;
use crate::model::Activation;

/// SELU constants (Klambauer et al., 2017), as Keras defines them.
pub const SELU_ALPHA: f64 = 1.673_263_242_354_377_3;
pub const SELU_SCALE: f64 = 1.050_700_987_355_480_5;

#[inline(always)]
fn f<T: Real>(act: Activation, z: T) -> T {
    let zero = T::zero();
    let one = T::one();
    match act {
        Activation::Elu | Activation::Celu | Activation::Selu | Activation::Silu => {
            f_e(act, z, exp_arg(act, z).exp())
        }
        Activation::Gelu => {
            T::c(0.5) * z * (one + (z * T::c(std::f64::consts::FRAC_1_SQRT_2)).erf())
        }
        Activation::Relu => {
            if z > zero {
                z
            } else {
                zero
            }
        }
        Activation::Tanh => tanh(z),
        Activation::Sigmoid => one / (one + (-z).exp()),
        Activation::LeakyRelu => {
            if z > zero {
                z
            } else {
                T::c(crate::model::LEAKY_RELU_SLOPE) * z
            }
        }
        Activation::Softplus => softplus(z),
        Activation::Mish => z * tanh_softplus(z),
    }
}

/// Whether f and f′ of `act` are both computed from one eˣ, [`exp_arg`]'s (elu, celu, selu,
/// silu): their loops (inference and training) compute it once per element, a block at a time.
const fn shares_exp(act: Activation) -> bool {
    matches!(
        act,
        Activation::Elu | Activation::Celu | Activation::Selu | Activation::Silu
    )
}

/// The x of the eˣ that [`f_e`] and [`df_e`] take: z, or −z for silu.
#[inline(always)]
fn exp_arg<T: Real>(act: Activation, z: T) -> T {
    match act {
        Activation::Silu => -z,
        _ => z,
    }
}

/// f(z) of a [`shares_exp`] activation, given `e` = exp([`exp_arg`]).
#[inline(always)]
fn f_e<T: Real>(act: Activation, z: T, e: T) -> T {
    let (zero, one) = (T::zero(), T::one());
    match act {
        Activation::Selu => {
            if z > zero {
                T::c(SELU_SCALE) * z
            } else {
                T::c(SELU_SCALE * SELU_ALPHA) * (e - one)
            }
        }
        // z·σ(z)
        Activation::Silu => z / (one + e),
        Activation::Elu | Activation::Celu => {
            if z > zero {
                z
            } else {
                e - one
            }
        }
        _ => unreachable!("{act} does not share one exp between f and f'"),
    }
}

/// f'(z) of a [`shares_exp`] activation, given y = f(z) and `e` = exp([`exp_arg`]).
#[inline(always)]
fn df_e<T: Real>(act: Activation, z: T, y: T, e: T) -> T {
    let (zero, one) = (T::zero(), T::one());
    match act {
        // z ≤ 0: scale·α·e^z = y + scale·α
        Activation::Selu => {
            if z > zero {
                T::c(SELU_SCALE)
            } else {
                y + T::c(SELU_SCALE * SELU_ALPHA)
            }
        }
        Activation::Silu => {
            let s = one / (one + e);
            s + z * s * (one - s)
        }
        // z ≤ 0: d/dz (e^z − 1) = e^z = y + 1
        Activation::Elu | Activation::Celu => {
            if z > zero {
                one
            } else {
                y + one
            }
        }
        _ => unreachable!("{act} does not share one exp between f and f'"),
    }
}

/// tanh z = 1 − 2/(e²ᶻ + 1) (exact at ±∞ with a clamped eˣ).
#[inline(always)]
fn tanh<T: Real>(z: T) -> T {
    T::one() - T::c(2.0) / ((z + z).exp() + T::one())
}

/// ln(1 + eᶻ) = max(z, 0) + ln(1 + e^−|z|).
#[inline(always)]
fn softplus<T: Real>(z: T) -> T {
    let zero = T::zero();
    let (pos, abs) = if z > zero { (z, z) } else { (zero, -z) };
    pos + (T::one() + (-abs).exp()).ln()
}

/// Above this, tanh(softplus z) is 1 in f32 and f64 alike (and e²ᶻ would overflow f32).
const MISH_SATURATES: f64 = 20.0;

/// tanh(softplus z) = ((1 + eᶻ)² − 1)/((1 + eᶻ)² + 1) = w/(w + 2), w = eᶻ(eᶻ + 2).
#[inline(always)]
fn tanh_softplus<T: Real>(z: T) -> T {
    let n = z.exp();
    let w = n * (n + T::c(2.0));
    let t = w / (w + T::c(2.0));
    if z > T::c(MISH_SATURATES) {
        T::one()
    } else {
        t
    }
}

/// f'(z), given also y = f(z) so that elu/celu/selu reuse exp(z) from the forward pass.
#[inline(always)]
fn df<T: Real>(act: Activation, z: T, y: T) -> T {
    let zero = T::zero();
    let one = T::one();
    match act {
        Activation::Elu | Activation::Celu | Activation::Selu | Activation::Silu => {
            df_e(act, z, y, exp_arg(act, z).exp())
        }
        // Φ(z) + z·φ(z)
        Activation::Gelu => {
            let cdf = T::c(0.5) * (one + (z * T::c(std::f64::consts::FRAC_1_SQRT_2)).erf());
            let pdf = T::c(0.398_942_280_401_432_7) * (T::c(-0.5) * z * z).exp();
            cdf + z * pdf
        }
        Activation::Relu => {
            if z > zero {
                one
            } else {
                zero
            }
        }
        // 1 − tanh² = s(2 − s), s = 2/(e^2|z| + 1): from z, since 1 − y² cancels as |y| → 1
        Activation::Tanh => {
            let a = if z > zero { z } else { -z };
            let s = T::c(2.0) / ((a + a).exp() + one);
            s * (T::c(2.0) - s)
        }
        // σ(1 − σ) = e/(1 + e)², e = e^−|z|: from z, since 1 − y cancels as y → 1
        Activation::Sigmoid => {
            let a = if z > zero { z } else { -z };
            let e = (-a).exp();
            e / ((one + e) * (one + e))
        }
        Activation::LeakyRelu => {
            if z > zero {
                one
            } else {
                T::c(crate::model::LEAKY_RELU_SLOPE)
            }
        }
        // σ(z)
        Activation::Softplus => one / (one + (-z).exp()),
        // t + z·(1 − t²)·σ(z), t = tanh(softplus z)
        Activation::Mish => {
            let t = tanh_softplus(z);
            let s = one / (one + (-z).exp());
            t + z * (one - t * t) * s
        }
    }
}

/// Calls `body` with the activation as a compile-time constant, so the per-element `match` in
/// `f`/`df` folds away and each loop vectorises (a runtime match per element cost 25% of a step).
macro_rules! with_const_act {
    ($act:expr, $a:ident => $body:expr) => {
        match $act {
            Activation::Elu => {
                const $a: Activation = Activation::Elu;
                $body
            }
            Activation::Celu => {
                const $a: Activation = Activation::Celu;
                $body
            }
            Activation::Gelu => {
                const $a: Activation = Activation::Gelu;
                $body
            }
            Activation::Relu => {
                const $a: Activation = Activation::Relu;
                $body
            }
            Activation::Selu => {
                const $a: Activation = Activation::Selu;
                $body
            }
            Activation::Silu => {
                const $a: Activation = Activation::Silu;
                $body
            }
            Activation::Tanh => {
                const $a: Activation = Activation::Tanh;
                $body
            }
            Activation::Sigmoid => {
                const $a: Activation = Activation::Sigmoid;
                $body
            }
            Activation::LeakyRelu => {
                const $a: Activation = Activation::LeakyRelu;
                $body
            }
            Activation::Softplus => {
                const $a: Activation = Activation::Softplus;
                $body
            }
            Activation::Mish => {
                const $a: Activation = Activation::Mish;
                $body
            }
        }
    };
}

/// Elements per block of the loops that share one eˣ ([`shares_exp`]): eight AVX-512 vectors,
/// whose passes ([`Real::exp_block`]) run from L1. Measured on Zen 5 (`dense_step/cpu/
/// act_fwd_train_elu`, 2,048 elements): 32 does not vectorise, 64 is 1.06× a plain loop, 128
/// 1.4–1.5×, 256 1.4×, 512 slower than the plain loop.
const BLOCK: usize = 128;

simd_dispatch! {
    /// `y[i] = f(z[i])`.
    pub fn fwd<T: Real>(act: Activation, z: &[T], y: &mut [T]) as fwd_portable, fwd_at {
        assert_eq!(z.len(), y.len());
        with_const_act!(act, A => {
            let mut done = 0;
            if shares_exp(A) {
                let (zb, _) = z.as_chunks::<BLOCK>();
                let (yb, _) = y.as_chunks_mut::<BLOCK>();
                for (z, y) in zb.iter().zip(yb) {
                    let mut e = z.map(|z| exp_arg(A, z));
                    T::exp_block(&mut e);
                    for i in 0..BLOCK {
                        y[i] = f_e(A, z[i], e[i]);
                    }
                }
                done = zb.len() * BLOCK;
            }
            for (y, &z) in y[done..].iter_mut().zip(&z[done..]) {
                *y = f(A, z);
            }
        })
    }
}

simd_dispatch! {
    /// `dz[i] = dy[i]·f'(z[i])`, with `y = f(z)` from the forward pass.
    pub fn bwd<T: Real>(act: Activation, z: &[T], y: &[T], dy: &[T], dz: &mut [T]) as bwd_portable, bwd_at {
        assert!(z.len() == y.len() && y.len() == dy.len() && dy.len() == dz.len());
        with_const_act!(act, A => {
            for (((dz, &z), &y), &dy) in dz.iter_mut().zip(z).zip(y).zip(dy) {
                *dz = dy * df(A, z, y);
            }
        })
    }
}

simd_dispatch! {
    /// The training forward pass: `y[i] = f(z[i])` and `d[i] = f'(z[i])` in one loop, the
    /// derivative as [`bwd`] computes it (same bits), so the work both share (eᶻ, erf) is done
    /// once and the backward pass is a multiply: `dz = dy ⊙ d`.
    pub fn fwd_train<T: Real>(act: Activation, z: &[T], y: &mut [T], d: &mut [T]) as fwd_train_portable, fwd_train_at {
        assert!(z.len() == y.len() && y.len() == d.len());
        with_const_act!(act, A => {
            let mut done = 0;
            if shares_exp(A) {
                let (zb, _) = z.as_chunks::<BLOCK>();
                let (yb, _) = y.as_chunks_mut::<BLOCK>();
                let (db, _) = d.as_chunks_mut::<BLOCK>();
                for ((z, y), d) in zb.iter().zip(yb).zip(db) {
                    let mut e = z.map(|z| exp_arg(A, z));
                    T::exp_block(&mut e);
                    for i in 0..BLOCK {
                        let v = f_e(A, z[i], e[i]);
                        y[i] = v;
                        d[i] = df_e(A, z[i], v, e[i]);
                    }
                }
                done = zb.len() * BLOCK;
            }
            for ((y, d), &z) in y[done..].iter_mut().zip(&mut d[done..]).zip(&z[done..]) {
                let v = f(A, z);
                *y = v;
                *d = df(A, z, v);
            }
        })
    }
}
