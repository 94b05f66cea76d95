//! Compiles the XDP programs in `bpf/` with libbpf-cargo; the objects are embedded in the binary:
//! the steering program, and the lab responder the benchmarks answer with.
use std::{env, path::PathBuf};

use libbpf_cargo::SkeletonBuilder;

const PROGRAMS: [(&str, &str, &str); 2] = [
    ("bpf/steer.bpf.c", "bpf/steer.h", "steer.bpf.o"),
    ("bpf/responder.bpf.c", "bpf/responder.h", "responder.bpf.o"),
];

fn main() {
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("OUT_DIR is set by cargo"));
    let arch = env::var("CARGO_CFG_TARGET_ARCH").expect("target arch is set by cargo");
    // Debian keeps asm/ headers under the multiarch directory.
    let multiarch = format!("-I/usr/include/{arch}-linux-gnu");
    for (src, header, obj) in PROGRAMS {
        SkeletonBuilder::new()
            .source(src)
            .obj(out.join(obj))
            .clang_args(["-O2", "-g", "-Wall", multiarch.as_str()])
            .build()
            .unwrap_or_else(|e| {
                panic!("compiling {src} (needs clang, libbpf headers: scripts/setup.sh): {e}")
            });
        println!("cargo:rerun-if-changed={src}");
        println!("cargo:rerun-if-changed={header}");
    }
}
