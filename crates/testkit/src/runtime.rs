//! A tokio runtime per test, for async test bodies that must not bury
//! their first panic.

use std::future::Future;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};

/// Runs a test body on a runtime of its own. A body that panics leaves
/// trackers running; dropping the runtime would then drop their
/// PostgreSQL clients inside async code, which panics again and buries
/// the first message, so the runtime is leaked instead (the test failed;
/// its process ends soon).
pub fn block_on(test: impl Future<Output = ()>) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("build the tokio runtime");
    if let Err(panic) = catch_unwind(AssertUnwindSafe(|| runtime.block_on(test))) {
        std::mem::forget(runtime);
        resume_unwind(panic);
    }
}
