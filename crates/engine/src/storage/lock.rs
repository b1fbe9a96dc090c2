//! The one way storage takes its locks.

use std::sync::{Mutex, MutexGuard, PoisonError};

/// A poisoned lock only means another thread panicked; the data it guards
/// (caches, records) stays consistent, so carry on.
pub(super) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
