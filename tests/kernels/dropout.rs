//! dropout_fwd / dropout_bwd against src/backend/cpu/dropout.rs: masks bit-identical to the CPU's
//! (same hash, shared test vectors), per-trial seeds, rates and step counters from the slot table.

use fastfc::backend::cpu::dropout;
use fastfc::backend::cuda::launch::{DropoutBwd, DropoutFwd, DropoutHash};
use fastfc::backend::cuda::Gpu;

use crate::{each_gpu, Cohort};

/// The same vectors as tests/ops/dropout.rs asserts for the CPU's hash5.
const HASH_VECTORS: [([u32; 5], u32); 4] = [
    ([0, 0, 0, 0, 0], 0x2fd7_925f),
    ([42, 1, 2, 3, 4], 0x853a_378e),
    ([0xffff_ffff, 7, 0, 31, 63], 0xd2da_c720),
    ([123_456, 15_625, 3, 16, 47], 0xb5e5_1bf9),
];

#[test]
fn device_hash_matches_the_shared_vectors() {
    each_gpu(|g| {
        let keys: Vec<u32> = HASH_VECTORS.iter().flat_map(|(k, _)| *k).collect();
        let kb = g.upload(&keys).unwrap();
        let out = g.alloc::<u32>(4).unwrap();
        g.launch(
            &DropoutHash {
                keys: kb.ptr(),
                n: 4,
                out: out.ptr(),
            }
            .launch(1),
        )
        .unwrap();
        let got = g.read(&out).unwrap();
        for (i, (k, want)) in HASH_VECTORS.iter().enumerate() {
            assert_eq!(got[i], *want, "ffc_hash5{k:?} on {}", g.name());
        }
    });
}

#[test]
fn dropout_fwd_masks_equal_the_cpu_bit_for_bit() {
    for (rows, width) in [(1usize, 1usize), (32, 64), (45, 48), (7, 33)] {
        let c = Cohort::mixed(6, 2, &[width], 8, 10, rows as u64);
        let trials = 6;
        let (step, layer) = (17u32, 1u32);
        let x = crate::common::nonzero(trials * rows * width, 5);
        each_gpu(|g| {
            let slots = g.upload(&c.slots).unwrap();
            let xb = g.upload(&x).unwrap();
            let m = g.upload(&vec![f32::NAN; x.len()]).unwrap();
            let y = g.upload(&vec![f32::NAN; x.len()]).unwrap();
            let k = DropoutFwd {
                slots: slots.ptr(),
                step,
                layer,
                rows: rows as i32,
                width: width as i32,
                x: xb.ptr(),
                mask: m.ptr(),
                y: y.ptr(),
            };
            g.launch(&k.launch(trials as u32)).unwrap();
            let (mg, yg) = (g.read(&m).unwrap(), g.read(&y).unwrap());
            for t in 0..trials {
                let s = &c.slots[t];
                let n = rows * width;
                let mut want = vec![0f32; n];
                if s.dropout > 0.0 {
                    dropout::mask(
                        s.seed,
                        s.step0 + step,
                        layer,
                        rows,
                        width,
                        s.dropout,
                        &mut want,
                    );
                } else {
                    want.fill(1.0);
                }
                for (i, &want_i) in want.iter().enumerate() {
                    let at = t * n + i;
                    assert_eq!(
                        mg[at].to_bits(),
                        want[i].to_bits(),
                        "dropout mask on {}: trial {t} (rate {}) row {} unit {}: got {} want {}",
                        g.name(),
                        s.dropout,
                        i / width,
                        i % width,
                        mg[at],
                        want[i]
                    );
                    assert_eq!(yg[at], x[at] * want_i, "dropout y: trial {t} element {i}");
                }
            }
            // Backward: dx = dy ⊙ mask.
            let dy = crate::common::nonzero(x.len(), 6);
            let dyb = g.upload(&dy).unwrap();
            let dx = g.upload(&vec![f32::NAN; x.len()]).unwrap();
            let k = DropoutBwd {
                slots: slots.ptr(),
                rows: rows as i32,
                width: width as i32,
                dy: dyb.ptr(),
                mask: m.ptr(),
                dx: dx.ptr(),
            };
            g.launch(&k.launch(trials as u32)).unwrap();
            let dxg = g.read(&dx).unwrap();
            for i in 0..x.len() {
                assert_eq!(
                    dxg[i],
                    dy[i] * mg[i],
                    "dropout_bwd element {i} on {}",
                    g.name()
                );
            }
        });
    }
}

#[test]
fn dropout_skips_inactive_trials() {
    let c = Cohort::mixed(3, 1, &[16], 8, 10, 3);
    let mut slots = c.slots.clone();
    slots[2].active = 0;
    each_gpu(|g| {
        let s = g.upload(&slots).unwrap();
        let x = g.upload(&crate::common::nonzero(3 * 4 * 16, 1)).unwrap();
        let m = g.upload(&vec![f32::NAN; 3 * 64]).unwrap();
        let y = g.upload(&vec![f32::NAN; 3 * 64]).unwrap();
        let k = DropoutFwd {
            slots: s.ptr(),
            step: 0,
            layer: 0,
            rows: 4,
            width: 16,
            x: x.ptr(),
            mask: m.ptr(),
            y: y.ptr(),
        };
        g.launch(&k.launch(3)).unwrap();
        let yg = g.read(&y).unwrap();
        assert!(yg[..128].iter().all(|v| v.is_finite()));
        assert!(
            yg[128..].iter().all(|v| v.is_nan()),
            "inactive trial written"
        );
    });
}
