//! The kernel build: with the CUDA 12 toolchain present (CI installs it with
//! scripts/cuda-toolchain.sh; FASTFC_REQUIRE_KERNELS=1 makes its absence a build failure) every
//! kernel is compiled for sm_75 through sm_90 without spills, by CUDA 12 (the driver floor), and
//! each device gets the right image. Without it the binary says consistently that it has none.

use fastfc::backend::cuda::toolchain;
use fastfc::kernels::{self, Image};

#[test]
fn every_kernel_is_built_for_t4_and_hopper_without_spills() {
    if !kernels::built() {
        // A build without the toolchain: allowed only when nobody required kernels, and then
        // nothing pretends otherwise.
        let required =
            std::env::var("FASTFC_REQUIRE_KERNELS").is_ok_and(|v| !v.is_empty() && v != "0");
        assert!(
            !required,
            "FASTFC_REQUIRE_KERNELS is set but this build has no kernels"
        );
        assert!(kernels::KERNELS.is_empty() && kernels::PTX.is_empty());
        assert_eq!(kernels::image_for((9, 0)), None);
        return;
    }
    for k in fastfc::backend::cuda::launch::DECLARED {
        assert!(
            kernels::KERNELS.contains(k),
            "{k} missing from {:?}",
            kernels::KERNELS
        );
        assert!(
            kernels::PTX.contains(&format!(".entry {k}(")),
            "{k} missing from the PTX"
        );
    }
    let rep = kernels::PTXAS_REPORT;
    for k in kernels::KERNELS {
        for arch in ["sm_75", "sm_80", "sm_86", "sm_89", "sm_90"] {
            assert!(
                rep.contains(&format!("Compiling entry function '{k}' for '{arch}'")),
                "{k} not compiled for {arch}"
            );
        }
    }
    assert!(
        !rep.lines()
            .any(|l| l.contains("bytes spill stores") && !l.contains(" 0 bytes spill stores")),
        "a kernel spills:\n{rep}"
    );
    // Each cubin is a CUDA ELF (e_machine 190 = EM_CUDA) for its architecture.
    let sms: Vec<u32> = kernels::CUBINS.iter().map(|c| c.0).collect();
    assert_eq!(sms, [75, 80, 86, 89, 90]);
    for (sm, img) in kernels::CUBINS {
        assert_eq!(&img[..4], b"\x7fELF", "sm_{sm}");
        assert_eq!(u16::from_le_bytes([img[18], img[19]]), 190, "sm_{sm}");
    }
}

/// The driver floor is a promise in README: CUDA 12 output loads on drivers from 525 up, its
/// PTX ISA 8.2 JIT-compiles on 535 up. A toolkit bump that would raise it fails here first.
#[test]
fn embedded_kernels_come_from_cuda_12() {
    if !kernels::built() {
        assert_eq!(kernels::TOOLKIT, "");
        return;
    }
    assert!(
        kernels::TOOLKIT.starts_with("12."),
        "kernels built by CUDA {}: the README's driver floor (525) holds for CUDA 12 only",
        kernels::TOOLKIT
    );
    assert_eq!(
        kernels::PTX_ISA,
        (8, 2),
        "PTX ISA changed: update README's driver table (PTX JIT floor) before shipping"
    );
    assert_eq!(toolchain::ptx_isa(kernels::PTX), Some(kernels::PTX_ISA));
    assert!(kernels::PTX.contains(".target sm_75"));
}

/// SASS runs on later minor versions of its major; anything newer than the cubins gets the PTX.
/// The rule is checked on stand-in images (so it runs without the toolchain too), and the built
/// binary's own images go through the same function.
#[test]
fn each_device_gets_the_image_it_can_run() {
    static CUBINS: [(u32, &[u8]); 5] = [
        (75, b"75"),
        (80, b"80"),
        (86, b"86"),
        (89, b"89"),
        (90, b"90"),
    ];
    let sm = |cc| match kernels::select_image(&CUBINS, "ptx", cc) {
        Some(Image::Cubin(sm, img)) => {
            assert_eq!(img, sm.to_string().as_bytes());
            Some(sm)
        }
        Some(Image::Ptx(p)) => {
            assert_eq!(p, "ptx");
            Some(0)
        }
        None => None,
    };
    assert_eq!(sm((7, 5)), Some(75), "T4");
    assert_eq!(sm((8, 0)), Some(80), "A100");
    assert_eq!(sm((8, 6)), Some(86), "RTX 30xx / A10");
    assert_eq!(sm((8, 7)), Some(86), "Orin runs sm_86 SASS");
    assert_eq!(sm((8, 9)), Some(89), "L4 / RTX 40xx");
    assert_eq!(sm((9, 0)), Some(90), "H100 / H200");
    assert_eq!(sm((10, 0)), Some(0), "Blackwell: PTX JIT");
    assert_eq!(sm((12, 0)), Some(0), "RTX 50xx: PTX JIT");
    assert_eq!(
        sm((7, 0)),
        None,
        "V100 (sm_70) is older than the compute_75 PTX"
    );
    assert_eq!(sm((6, 1)), None, "Pascal is too old");
    assert_eq!(
        kernels::select_image(&[], "ptx", (9, 0)),
        None,
        "no kernels, no image"
    );
    // The binary's own: its sm_90 cubin for an H200 when it has kernels, nothing otherwise.
    match kernels::image_for((9, 0)) {
        Some(Image::Cubin(90, img)) => assert_eq!(&img[..4], b"\x7fELF"),
        None => assert!(!kernels::built()),
        other => panic!("sm_90 got {other:?}"),
    }
}

/// FASTFC_REQUIRE_KERNELS=1 without a toolchain fails the build (build.rs panics on this error)
/// instead of shipping a binary without kernels, found out only on the GPU machine.
#[test]
fn required_kernels_without_a_toolchain_fail_the_build() {
    let empty = tempfile::tempdir().unwrap();
    let none = |_: &str| None;
    assert_eq!(toolchain::find(empty.path(), &none, false), Ok(None));
    let e = toolchain::find(empty.path(), &none, true).unwrap_err();
    assert!(
        e.contains("FASTFC_REQUIRE_KERNELS") && e.contains("scripts/cuda-toolchain.sh"),
        "{e}"
    );
    // A toolkit named by CUDA_HOME without the files is looked at and named, not trusted.
    let home = empty.path().display().to_string();
    let cuda_home = |k: &str| (k == "CUDA_HOME").then(|| home.clone());
    let e = toolchain::find(empty.path(), &cuda_home, true).unwrap_err();
    assert!(e.contains(&format!("{home}/bin/ptxas")), "{e}");
    // The pip layout scripts/cuda-toolchain.sh makes is found without any variable.
    let nv = empty
        .path()
        .join(".venv-cuda/lib/python3.11/site-packages/nvidia");
    for f in ["cuda_nvrtc/lib/libnvrtc.so.12", "cuda_nvcc/bin/ptxas"] {
        let p = nv.join(f);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, b"").unwrap();
    }
    let t = toolchain::find(empty.path(), &none, true).unwrap().unwrap();
    assert_eq!(t.ptxas, nv.join("cuda_nvcc/bin/ptxas"));
    // FASTFC_CUDA_TOOLCHAIN=none builds as a machine without one would.
    let hidden = |k: &str| (k == "FASTFC_CUDA_TOOLCHAIN").then(|| "none".to_string());
    assert_eq!(toolchain::find(empty.path(), &hidden, false), Ok(None));
    assert!(toolchain::find(empty.path(), &hidden, true).is_err());
}
