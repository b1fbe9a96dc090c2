//! Decisions the engine used to make on its own, now the swarm's: which of
//! two twin connections stays, how many uploads are on their way to one
//! peer, and when hashing lags too far behind to take more blocks. Each
//! test drives one `Swarm` by hand, as its driver would.

#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::time::Instant;

use swarm::picker::BLOCK;
use swarm::{
    Action, Bitfield, DisconnectReason, Outgoing, PeerCaps, PeerKey, Swarm, SwarmSettings,
};
use testkit::layout::synthetic_layout;
use wire::{BlockRef, Message};

fn id(first: u8) -> [u8; 20] {
    let mut id = [b'x'; 20];
    id[0] = first;
    id
}

fn caps(peer_id: [u8; 20]) -> PeerCaps {
    PeerCaps {
        fast: true,
        extended: false,
        peer_id,
        origin_share_id: None,
    }
}

fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([10, 0, 0, 1], port))
}

fn swarm(ours: [u8; 20], have: Bitfield, pieces: u32, piece_length: u64, now: Instant) -> Swarm {
    let layout = synthetic_layout(pieces, piece_length);
    Swarm::new(layout, have, SwarmSettings::default(), 7, ours, now)
}

fn actions(swarm: &mut Swarm) -> Vec<Action> {
    std::iter::from_fn(|| swarm.poll_action()).collect()
}

#[test]
fn of_twin_connections_the_one_opened_by_the_smaller_peer_id_stays() {
    let now = Instant::now();
    // We have the smaller id: our outgoing connection stays, their
    // incoming one is refused.
    let mut small = swarm(id(b'a'), Bitfield::new(4), 4, 65536, now);
    let dialled = small
        .handle_peer_connected(now, addr(6881), true, caps(id(b'b')))
        .unwrap();
    assert_eq!(
        small.handle_peer_connected(now, addr(50000), false, caps(id(b'b'))),
        Err(DisconnectReason::Duplicate)
    );
    assert_eq!(small.peer_addr(dialled), Some(addr(6881)));

    // We have the larger id: their incoming connection replaces ours.
    let mut large = swarm(id(b'c'), Bitfield::new(4), 4, 65536, now);
    let dialled = large
        .handle_peer_connected(now, addr(6881), true, caps(id(b'b')))
        .unwrap();
    actions(&mut large);
    let incoming = large
        .handle_peer_connected(now, addr(50000), false, caps(id(b'b')))
        .unwrap();
    assert_ne!(incoming, dialled);
    assert_eq!(large.peer_addr(dialled), None, "the twin is gone");
    assert!(actions(&mut large).contains(&Action::Disconnect(dialled, DisconnectReason::Duplicate)));
    assert_eq!(large.connected_peers().count(), 1);
}

#[test]
fn a_second_connection_in_the_same_direction_is_refused() {
    let now = Instant::now();
    let mut swarm = swarm(id(b'c'), Bitfield::new(4), 4, 65536, now);
    swarm
        .handle_peer_connected(now, addr(50000), false, caps(id(b'b')))
        .unwrap();
    assert_eq!(
        swarm.handle_peer_connected(now, addr(50001), false, caps(id(b'b'))),
        Err(DisconnectReason::Duplicate)
    );
}

#[test]
fn at_most_sixteen_uploads_are_on_their_way_to_one_peer() {
    let now = Instant::now();
    let mut seed = swarm(id(b'a'), Bitfield::full(4), 4, 512 * 1024, now);
    let key = seed
        .handle_peer_connected(now, addr(6881), false, caps(id(b'b')))
        .unwrap();
    seed.handle_message(now, key, &Message::HaveNone).unwrap();
    seed.handle_message(now, key, &Message::Interested).unwrap();
    assert!(actions(&mut seed).contains(&Action::Send(key, Outgoing::Unchoke)));
    for index in 0..20 {
        let block = BlockRef {
            piece: 0,
            offset: index * BLOCK,
            length: BLOCK,
        };
        seed.handle_message(now, key, &Message::Request(block))
            .unwrap();
    }
    let mut handed = 0;
    while seed.next_upload(key).is_some() {
        handed += 1;
    }
    assert_eq!(handed, 16);
    seed.handle_block_sent(now, key, 2, 2 * u64::from(BLOCK));
    assert!(seed.next_upload(key).is_some());
    assert!(seed.next_upload(key).is_some());
    assert_eq!(seed.next_upload(key), None, "two sent, two more handed out");
    seed.handle_upload_dropped(key);
    assert!(
        seed.next_upload(key).is_some(),
        "a dropped block frees its slot"
    );
}

/// Answers every request `key` was sent with its block; returns the pieces
/// the swarm asked to verify, in order.
fn serve(swarm: &mut Swarm, key: PeerKey, now: Instant, pieces: usize) -> Vec<u32> {
    let mut verify = Vec::new();
    while verify.len() < pieces {
        let requests: Vec<BlockRef> = actions(swarm)
            .into_iter()
            .filter_map(|action| match action {
                Action::Send(k, Outgoing::Request(block)) if k == key => Some(block),
                Action::Verify(piece) => {
                    verify.push(piece);
                    None
                }
                _ => None,
            })
            .collect();
        if requests.is_empty() {
            break;
        }
        for block in requests {
            swarm.handle_block(now, key, block).unwrap();
        }
    }
    verify
}

/// Small pieces: 8 MiB waiting is enough to keep hashing busy, and what
/// bounds the agent's memory when hashing lags.
#[test]
fn blocks_wait_while_8_mib_of_1_mib_pieces_wait_for_their_hash_check() {
    let now = Instant::now();
    let piece_length = 64 * u64::from(BLOCK); // 1 MiB
    let mut leech = swarm(id(b'a'), Bitfield::new(12), 12, piece_length, now);
    let key = leech
        .handle_peer_connected(now, addr(6881), true, caps(id(b'b')))
        .unwrap();
    leech.handle_message(now, key, &Message::HaveAll).unwrap();
    leech.handle_message(now, key, &Message::Unchoke).unwrap();
    let waiting = serve(&mut leech, key, now, 12);
    assert!(waiting.len() >= 8, "{} pieces complete", waiting.len());
    for (checked, piece) in waiting.iter().enumerate() {
        let left = waiting.len() - checked;
        assert_eq!(leech.takes_blocks(), left < 8, "{left} MiB waiting");
        leech.handle_piece_checked(now, *piece, true, &[]);
    }
    assert!(leech.takes_blocks());
}

#[test]
fn blocks_wait_while_32_mib_of_pieces_wait_for_their_hash_check() {
    let now = Instant::now();
    let piece_length = 1024 * u64::from(BLOCK); // 16 MiB
    let mut leech = swarm(id(b'a'), Bitfield::new(3), 3, piece_length, now);
    let key = leech
        .handle_peer_connected(now, addr(6881), true, caps(id(b'b')))
        .unwrap();
    leech.handle_message(now, key, &Message::HaveAll).unwrap();
    leech.handle_message(now, key, &Message::Unchoke).unwrap();
    assert!(leech.takes_blocks());
    let first = serve(&mut leech, key, now, 1);
    assert_eq!(first.len(), 1);
    assert!(leech.takes_blocks(), "16 MiB waiting is under the limit");
    let second = serve(&mut leech, key, now, 1);
    assert_eq!(second.len(), 1);
    assert!(!leech.takes_blocks(), "32 MiB waiting reaches it");
    leech.handle_piece_checked(now, first[0], true, &[]);
    assert!(leech.takes_blocks(), "a checked piece makes room");
}
