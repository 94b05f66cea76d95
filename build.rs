//! Compiles the XDP program in `bpf/` with libbpf-cargo; the object is embedded in the binary.
use std::{env, path::PathBuf};

use libbpf_cargo::SkeletonBuilder;

const SRC: &str = "bpf/steer.bpf.c";

fn main() {
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("OUT_DIR is set by cargo"));
    let arch = env::var("CARGO_CFG_TARGET_ARCH").expect("target arch is set by cargo");
    // Debian keeps asm/ headers under the multiarch directory.
    let multiarch = format!("-I/usr/include/{arch}-linux-gnu");
    SkeletonBuilder::new()
        .source(SRC)
        .obj(out.join("steer.bpf.o"))
        .clang_args(["-O2", "-g", "-Wall", multiarch.as_str()])
        .build()
        .expect("compiling bpf/steer.bpf.c (needs clang, libbpf headers: scripts/setup.sh)");
    println!("cargo:rerun-if-changed={SRC}");
    println!("cargo:rerun-if-changed=bpf/steer.h");
}
