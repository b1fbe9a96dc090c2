//! The tracker (being written).
