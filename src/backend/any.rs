//! [`AnyBackend`]: the backend `--device` chose, as one type the commands and the study use.

use super::cpu::{CpuBackend, CpuCohort};
use super::cuda::engine::{CudaBackend, CudaCohort, Paths};
use super::spread::{Spread, SpreadCohort};
use super::{Backend, EvalStats, SplitId, TrainStats};
use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::model::{TrialSpec, TrialState};

pub enum AnyBackend {
    Cpu(CpuBackend),
    Cuda(Box<CudaBackend>),
    /// Several CUDA devices (`--device cuda:all`, `cuda:0,2`).
    Spread(Box<Spread<CudaBackend>>),
}

pub enum AnyCohort {
    Cpu(CpuCohort),
    Cuda(CudaCohort),
    Spread(SpreadCohort<CudaCohort>),
}

impl AnyBackend {
    /// Whether this is the CPU backend.
    pub fn is_cpu(&self) -> bool {
        matches!(self, AnyBackend::Cpu(_))
    }

    /// The device's peak FP32 GFLOP/s: a GPU's from the clock it reports; the CPU's FMA peak
    /// measured on every thread of rayon's pool at once (`cpu::gemm::fma_peak_gflops` summed),
    /// with the vectors the dense kernels use.
    pub fn peak_gflops(&self) -> Option<f64> {
        match self {
            AnyBackend::Cuda(b) => AnyBackend::peak_of(b),
            AnyBackend::Spread(s) => s.devices().iter().map(AnyBackend::peak_of).sum(),
            AnyBackend::Cpu(_) => {
                use crate::backend::cpu::{dense, gemm};
                let isa = dense::isa();
                let each = rayon::broadcast(|_| gemm::fma_peak_gflops(isa));
                each.into_iter().sum()
            }
        }
    }

    /// How many trials the CUDA engine loaded on its fused and its per-op path so far (None on
    /// the CPU).
    pub fn paths(&self) -> Option<Paths> {
        match self {
            AnyBackend::Cuda(b) => Some(b.paths()),
            AnyBackend::Spread(s) => Some(
                s.devices()
                    .iter()
                    .fold(Paths::default(), |a, b| a + b.paths()),
            ),
            AnyBackend::Cpu(_) => None,
        }
    }
}

impl AnyBackend {
    fn peak_of(b: &CudaBackend) -> Option<f64> {
        match b.gpu() {
            super::cuda::AnyGpu::Cuda(g) => g.info.peak_fp32_gflops(),
            #[allow(unreachable_patterns)]
            _ => None,
        }
    }
}

impl AnyCohort {
    /// How many of the cohort's trials run on the CUDA engine's fused and per-op paths now (None
    /// on the CPU).
    pub fn paths(&self) -> Option<Paths> {
        match self {
            AnyCohort::Cuda(c) => Some(c.paths()),
            AnyCohort::Spread(s) => Some(s.parts().fold(Paths::default(), |a, c| a + c.paths())),
            AnyCohort::Cpu(_) => None,
        }
    }
}

fn mismatch() -> Error {
    Error::backend(
        "backend",
        "a cohort was used with a backend that did not load it",
    )
}

impl Backend for AnyBackend {
    type Cohort = AnyCohort;

    fn name(&self) -> String {
        match self {
            AnyBackend::Cpu(b) => b.name(),
            AnyBackend::Cuda(b) => b.name(),
            AnyBackend::Spread(b) => b.name(),
        }
    }
    fn data(&self) -> &Dataset {
        match self {
            AnyBackend::Cpu(b) => b.data(),
            AnyBackend::Cuda(b) => b.data(),
            AnyBackend::Spread(b) => b.data(),
        }
    }
    fn default_cohort(&self) -> usize {
        match self {
            AnyBackend::Cpu(b) => b.default_cohort(),
            AnyBackend::Cuda(b) => b.default_cohort(),
            AnyBackend::Spread(b) => b.default_cohort(),
        }
    }
    fn max_cohort(&self, specs: &[TrialSpec], batch: usize) -> usize {
        match self {
            AnyBackend::Cpu(b) => b.max_cohort(specs, batch),
            AnyBackend::Cuda(b) => b.max_cohort(specs, batch),
            AnyBackend::Spread(b) => b.max_cohort(specs, batch),
        }
    }
    fn load(&self, trials: Vec<(TrialSpec, TrialState)>) -> Result<AnyCohort> {
        Ok(match self {
            AnyBackend::Cpu(b) => AnyCohort::Cpu(b.load(trials)?),
            AnyBackend::Cuda(b) => AnyCohort::Cuda(b.load(trials)?),
            AnyBackend::Spread(b) => AnyCohort::Spread(b.load(trials)?),
        })
    }
    fn train_epoch(
        &self,
        c: &mut AnyCohort,
        order: &[u32],
        batch: usize,
        active: &[bool],
        progress: &(dyn Fn(u64) + Sync),
    ) -> Result<Vec<TrainStats>> {
        match (self, c) {
            (AnyBackend::Cpu(b), AnyCohort::Cpu(c)) => {
                b.train_epoch(c, order, batch, active, progress)
            }
            (AnyBackend::Cuda(b), AnyCohort::Cuda(c)) => {
                b.train_epoch(c, order, batch, active, progress)
            }
            (AnyBackend::Spread(b), AnyCohort::Spread(c)) => {
                b.train_epoch(c, order, batch, active, progress)
            }
            _ => Err(mismatch()),
        }
    }
    fn evaluate(&self, c: &AnyCohort, split: SplitId, active: &[bool]) -> Result<Vec<EvalStats>> {
        match (self, c) {
            (AnyBackend::Cpu(b), AnyCohort::Cpu(c)) => b.evaluate(c, split, active),
            (AnyBackend::Cuda(b), AnyCohort::Cuda(c)) => b.evaluate(c, split, active),
            (AnyBackend::Spread(b), AnyCohort::Spread(c)) => b.evaluate(c, split, active),
            _ => Err(mismatch()),
        }
    }
    fn state(&self, c: &AnyCohort, i: usize) -> Result<TrialState> {
        match (self, c) {
            (AnyBackend::Cpu(b), AnyCohort::Cpu(c)) => b.state(c, i),
            (AnyBackend::Cuda(b), AnyCohort::Cuda(c)) => b.state(c, i),
            (AnyBackend::Spread(b), AnyCohort::Spread(c)) => b.state(c, i),
            _ => Err(mismatch()),
        }
    }
    fn set_state(&self, c: &mut AnyCohort, i: usize, state: TrialState) -> Result<()> {
        match (self, c) {
            (AnyBackend::Cpu(b), AnyCohort::Cpu(c)) => b.set_state(c, i, state),
            (AnyBackend::Cuda(b), AnyCohort::Cuda(c)) => b.set_state(c, i, state),
            (AnyBackend::Spread(b), AnyCohort::Spread(c)) => b.set_state(c, i, state),
            _ => Err(mismatch()),
        }
    }
}
