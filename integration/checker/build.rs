//! Refuses a dynamically linked build: the container root filesystems have no libc to load.

fn main() {
    let features = std::env::var("CARGO_CFG_TARGET_FEATURE").unwrap_or_default();
    if !features.split(',').any(|feature| feature == "crt-static") {
        panic!(
            "checker must be linked statically: build from integration/ (which has .cargo/config.toml) \
             or pass `--config integration/.cargo/config.toml`"
        );
    }
}
