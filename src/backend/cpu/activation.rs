//! activation: elu, celu (α = 1), gelu (exact erf form, Keras' default), relu, selu, silu.
//! y = f(z) and dz = dy·f'(z). Reference for `kernels/activation.cu` (tests/ops/activation.rs);
//! gradient-checked in f64 in tests/gradcheck.rs.

use super::simd::avx2_dispatch;
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
        Activation::Elu | Activation::Celu => {
            if z > zero {
                z
            } else {
                z.exp() - one
            }
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
        Activation::Selu => {
            if z > zero {
                T::c(SELU_SCALE) * z
            } else {
                T::c(SELU_SCALE * SELU_ALPHA) * (z.exp() - one)
            }
        }
        Activation::Silu => z / (one + (-z).exp()),
    }
}

/// f'(z), given also y = f(z) so that elu/celu/selu reuse exp(z) from the forward pass.
#[inline(always)]
fn df<T: Real>(act: Activation, z: T, y: T) -> T {
    let zero = T::zero();
    let one = T::one();
    match act {
        // z ≤ 0: d/dz (e^z − 1) = e^z = y + 1
        Activation::Elu | Activation::Celu => {
            if z > zero {
                one
            } else {
                y + one
            }
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
        // z ≤ 0: scale·α·e^z = y + scale·α
        Activation::Selu => {
            if z > zero {
                T::c(SELU_SCALE)
            } else {
                y + T::c(SELU_SCALE * SELU_ALPHA)
            }
        }
        Activation::Silu => {
            let s = one / (one + (-z).exp());
            s + z * s * (one - s)
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
        }
    };
}

avx2_dispatch! {
    /// `y[i] = f(z[i])`.
    pub fn fwd<T: Real>(act: Activation, z: &[T], y: &mut [T]) / fwd_portable {
        assert_eq!(z.len(), y.len());
        with_const_act!(act, A => {
            for (y, &z) in y.iter_mut().zip(z) {
                *y = f(A, z);
            }
        })
    }
}

avx2_dispatch! {
    /// `dz[i] = dy[i]·f'(z[i])`, with `y = f(z)` from the forward pass.
    pub fn bwd<T: Real>(act: Activation, z: &[T], y: &[T], dy: &[T], dz: &mut [T]) / bwd_portable {
        assert!(z.len() == y.len() && y.len() == dy.len() && dy.len() == dz.len());
        with_const_act!(act, A => {
            for (((dz, &z), &y), &dy) in dz.iter_mut().zip(z).zip(y).zip(dy) {
                *dz = dy * df(A, z, y);
            }
        })
    }
}
