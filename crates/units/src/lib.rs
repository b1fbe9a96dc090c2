//! Quantities as people type and read them, written once for every shoal
//! program: byte counts with binary suffixes (`64M` on the command line,
//! `1.5 GiB` on a dashboard) and calendar days in UTC (the accounting's
//! `YYYY-MM-DD`). Pure functions, no dependencies.

pub mod bytes;
pub mod days;

pub use bytes::{format_bytes, parse_bytes};
