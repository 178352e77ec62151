//! hull's executable starts at `preseal`'s entry point, which re-execs a command that enters a container from
//! its sealed view before the C library starts (src/preseal.rs). Only in release builds: that code must compile to
//! raw syscalls and nothing else (no call into libc, which a static executable has not initialised yet), which the
//! optimised build does and an unoptimised one, with its memcpy'd moves and out-of-line helpers, does not.

fn main() {
    let arch = std::env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_default();
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let profile = std::env::var("PROFILE").unwrap_or_default();
    if arch == "x86_64" && os == "linux" && profile == "release" {
        println!("cargo:rustc-link-arg-bins=-Wl,--entry=hull_entry");
    }
    println!("cargo:rerun-if-changed=build.rs");
}
