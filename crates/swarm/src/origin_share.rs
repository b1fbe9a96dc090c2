//! Who fetches an unheld piece from the origin: rendezvous hashing over
//! the agents that know each other. Every agent, of any version, must
//! compute the same numbers, so these are fixed functions with pinned
//! values in the test below.

/// The share id of the agent whose BitTorrent peer id is `peer_id`: every
/// agent must derive it the same way (FNV-1a, 64 bits).
pub fn origin_share_id(peer_id: &[u8; 20]) -> u64 {
    peer_id.iter().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// How strongly the agent `share_id` claims `piece` (splitmix64 of the
/// pair): the highest claim among the agents that know each other wins.
pub(crate) fn origin_weight(share_id: u64, piece: u32) -> u64 {
    let mut z = share_id ^ u64::from(piece).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Agents of different versions must agree on who owns a piece.
    #[test]
    fn share_ids_and_weights_are_fixed_functions() {
        // Values computed independently (FNV-1a 64 and splitmix64).
        let id = origin_share_id(b"-SH0100-abcdefghijkl");
        assert_eq!(id, 0xded8_9cd3_70bc_f5b7);
        assert_eq!(origin_weight(id, 7), 0x8ed9_55cb_5df5_cd19);
        assert_ne!(origin_weight(1, 0), origin_weight(2, 0));
        assert_ne!(origin_weight(1, 0), origin_weight(1, 1));
    }
}
