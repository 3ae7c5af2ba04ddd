//! Search-space files (`--space FILE.toml`): parsed, then sampled and, when it is one, gridded.
#![no_main]

use rand::SeedableRng;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let p = std::path::Path::new("space.toml");
    if let Ok(s) = fastfc::space::SearchSpace::parse(p, text) {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        for _ in 0..4 {
            let _ = s.sample(&mut rng).validate();
        }
        let _ = s.grid(p);
    }
});
