//! Records the target triple the agent is built for: the updater asks
//! the project's feed for builds of exactly this target.

fn main() {
    let target = std::env::var("TARGET").unwrap_or_default();
    println!("cargo:rustc-env=SHOAL_BUILD_TARGET={target}");
    println!("cargo:rerun-if-changed=build.rs");
}
