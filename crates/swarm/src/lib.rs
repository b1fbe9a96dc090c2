//! The swarm state machine (being written).
