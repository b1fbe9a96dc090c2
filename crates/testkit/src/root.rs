//! Tests that need root (to mount a filesystem, to build network
//! namespaces) say so and fail when they cannot run, instead of passing
//! without having checked anything. CI runs as root, so there they run for
//! real; a developer without root opts out explicitly with
//! `SHOAL_TEST_SKIP_ROOT=1`, and the test then says loudly that it did not
//! test what it is for.

/// The variable that lets a test needing root pass without it.
pub const SKIP_ROOT_VAR: &str = "SHOAL_TEST_SKIP_ROOT";

/// Whether this process runs as root (effective uid 0), read from
/// `/proc/self/status` (no libc, no unsafe); `false` where there is no
/// `/proc`.
pub fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            let line = s.lines().find(|l| l.starts_with("Uid:"))?.to_owned();
            line.split_whitespace().nth(2).map(|uid| uid == "0")
        })
        .unwrap_or(false)
}

/// Called by `test` when it found it cannot run without root, `why`
/// saying what it needs root for: panics with how to run it, unless
/// `SHOAL_TEST_SKIP_ROOT=1` asks to skip it, in which case it prints that
/// the test did not run and returns (the caller then returns too).
#[track_caller]
pub fn not_root(test: &str, why: &str) {
    if std::env::var(SKIP_ROOT_VAR).is_ok_and(|v| v == "1") {
        eprintln!("NOT TESTED ({SKIP_ROOT_VAR}=1): {test} needs root {why}");
        return;
    }
    panic!(
        "{test} needs root {why}, and this test runs as another user: \
         run it as root (as CI does, e.g. `sudo -E cargo test`), or set \
         {SKIP_ROOT_VAR}=1 to skip it knowingly"
    );
}
