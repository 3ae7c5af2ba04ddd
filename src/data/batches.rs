//! Epoch batch orders. Every trial of a study sees the same order in epoch `e`: a Fisher–Yates
//! shuffle of 0..n driven by ChaCha8 seeded from (study seed, epoch). So a trial's result does not
//! depend on which cohort it ran in, and a promoted Hyperband trial continues with the order of
//! its absolute epoch.

use rand::seq::SliceRandom;
use rand::SeedableRng;

use crate::rng::{derive_seed, stream};

/// The shuffled sample indices of `epoch` (0-based) for a split of `n` samples.
pub fn epoch_order(seed: u64, epoch: usize, n: usize) -> Vec<u32> {
    let mut order: Vec<u32> = (0..n as u32).collect();
    let mut rng =
        rand_chacha::ChaCha8Rng::seed_from_u64(derive_seed(seed, stream::SHUFFLE, epoch as u64));
    order.shuffle(&mut rng);
    order
}

/// Number of optimizer steps in one epoch (the last batch may be partial, as in Keras).
pub fn steps_per_epoch(n: usize, batch: usize) -> usize {
    n.div_ceil(batch)
}
