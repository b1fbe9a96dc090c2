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

/// The claim an agent needs on a piece, on top of being the highest among
/// the agents it knows, for about `claimers` agents of a swarm of
/// `swarm_size` to fetch that piece from the origin, when each knows
/// `known` others.
///
/// Rendezvous among the agents one knows elects one owner per
/// neighbourhood: in a swarm of 1,000 agents that each know 60, that is 16
/// owners per piece, 16 copies asked of the origin at once. Requiring the
/// weight to be in the top quantile `q` as well leaves
/// `swarm_size / (known + 1) × (1 − (1 − q)^(known + 1))` expected owners;
/// this solves that for `q`. Where everyone knows everyone (or the swarm's
/// size is unknown) the bar is zero and rendezvous alone decides.
pub(crate) fn claim_floor(claimers: f64, known: usize, swarm_size: u64) -> u64 {
    let group = known as f64 + 1.0;
    let share = claimers * group / swarm_size as f64;
    if !share.is_finite() || share >= 1.0 {
        return 0;
    }
    let quantile = 1.0 - (1.0 - share).powf(1.0 / group);
    // Claims are uniform over u64: the bar leaves the top `quantile`.
    let floor = (1.0 - quantile) * u64::MAX as f64;
    floor as u64 // saturating cast
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The bar leaves about `claimers` owners per piece in a big swarm and
    /// none where everyone knows everyone.
    #[test]
    fn the_claim_floor_scales_with_the_swarm() {
        assert_eq!(claim_floor(1.0, 19, 20), 0);
        assert_eq!(claim_floor(1.0, 60, 0), 0);
        assert_eq!(claim_floor(2.0, 60, 100), 0);
        // 1,000 agents that know 60 each: 16 neighbourhoods; about one
        // owner in all of them means a bar near the top 0.1 %.
        let floor = claim_floor(1.0, 60, 1000);
        let quantile = 1.0 - floor as f64 / u64::MAX as f64;
        let owners = 1000.0 / 61.0 * (1.0 - (1.0 - quantile).powi(61));
        assert!((owners - 1.0).abs() < 1e-6, "{owners}");
        assert!(claim_floor(2.0, 60, 1000) < floor);
        assert!(claim_floor(1.0, 60, 1_000_000) > floor);
    }

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
