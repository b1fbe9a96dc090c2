//! The tokio driver (being written).

pub mod storage;
pub mod tracker_client;
