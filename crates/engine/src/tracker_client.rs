//! Tracker client (being written).
