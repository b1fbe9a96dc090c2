//! Locking a std mutex that another thread may have poisoned by panicking:
//! the maps it guards hold no half-made state across a panic point, so
//! carrying on is right, and one panicking request must not take the
//! agent's API down with it.

use std::sync::{Mutex, MutexGuard, PoisonError};

pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
