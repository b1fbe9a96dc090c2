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
fn at_most_four_uploads_are_on_their_way_to_one_peer() {
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
    assert_eq!(handed, 4);
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

/// A downloader of 8 pieces of 64 KiB with the origin, and one peer (a
/// shoal agent whose share id is `their_share`) that has `pieces` and has
/// unchoked us.
fn with_origin(now: Instant, pieces: Message<'static>, their_share: u64) -> (Swarm, PeerKey) {
    let mut leech = swarm(id(b'a'), Bitfield::new(8), 8, 65536, now);
    leech.set_origin(now, &id(b'a'));
    let mut their_caps = caps(id(b'b'));
    their_caps.origin_share_id = Some(their_share);
    let key = leech
        .handle_peer_connected(now, addr(6881), true, their_caps)
        .unwrap();
    leech.handle_message(now, key, &pieces).unwrap();
    leech.handle_message(now, key, &Message::Unchoke).unwrap();
    (leech, key)
}

/// Runs the timer every half second from `from` to `until`, or until the
/// swarm asks the origin for something; returns the pieces asked, with when.
fn origin_fetches(swarm: &mut Swarm, from: Instant, until: Instant) -> Vec<(u32, Instant)> {
    let mut fetches = Vec::new();
    let mut now = from;
    while now <= until && fetches.is_empty() {
        swarm.handle_timeout(now);
        for action in actions(swarm) {
            if let Action::FetchFromOrigin { piece, .. } = action {
                fetches.push((piece, now));
            }
        }
        now += std::time::Duration::from_millis(500);
    }
    fetches
}

/// Delivers a whole piece from the origin and passes its check.
fn origin_delivers(swarm: &mut Swarm, now: Instant, piece: u32) -> Vec<Action> {
    for index in 0..4 {
        let block = BlockRef {
            piece,
            offset: index * BLOCK,
            length: BLOCK,
        };
        assert!(swarm.handle_origin_block(now, block));
    }
    swarm.handle_piece_checked(now, piece, true, &[]);
    actions(swarm)
}

fn secs(s: u64) -> std::time::Duration {
    std::time::Duration::from_secs(s)
}

#[test]
fn a_peer_with_requests_in_flight_to_a_slow_peer_does_not_use_the_origin() {
    let now = Instant::now();
    let (mut leech, key) = with_origin(now, Message::HaveAll, 1);
    let sent = actions(&mut leech);
    assert!(sent
        .iter()
        .any(|a| matches!(a, Action::Send(k, Outgoing::Request(_)) if *k == key)));
    // Nothing arrives: the peer is slow, not gone. Until it is snubbed
    // (20 s without a block) the link is not idle and the origin waits.
    let early = origin_fetches(&mut leech, now, now + secs(20));
    assert_eq!(early, vec![], "a busy link does not stall");
    // Snubbed, its requests no longer count as supply: one piece, then
    // the next waits 10 s more.
    let later = origin_fetches(&mut leech, now + secs(20), now + secs(25));
    assert_eq!(later.len(), 1, "{later:?}");
}

#[test]
fn a_peer_choked_by_peers_that_have_data_backs_off_exponentially() {
    let now = Instant::now();
    let (mut leech, key) = with_origin(now, Message::HaveAll, 1);
    actions(&mut leech);
    // Choked: no request in flight, the link is idle, the peer has data.
    leech.handle_message(now, key, &Message::Choke).unwrap();
    let mut starts = Vec::new();
    let mut at = now;
    for _ in 0..3 {
        let fetches = origin_fetches(&mut leech, at, now + secs(200));
        let &(piece, when) = fetches.first().expect("a stalled peer gets a piece");
        starts.push(when.duration_since(now).as_secs_f64());
        let next = origin_delivers(&mut leech, when, piece);
        assert!(
            !next
                .iter()
                .any(|a| matches!(a, Action::FetchFromOrigin { .. })),
            "no second piece at once"
        );
        at = when + std::time::Duration::from_millis(500);
    }
    // 5 s of quiet, then 10 s after that fetch, then 20 s.
    assert_eq!(starts, vec![5.0, 15.0, 35.0]);
}

#[test]
fn a_peer_whose_peers_hold_nothing_takes_piece_after_piece_from_the_origin() {
    let now = Instant::now();
    // The other agent claims more pieces than we do, yet holds nothing
    // and fetches nothing: after 5 s without a block we take them too.
    let (mut leech, _) = with_origin(now, Message::HaveNone, 1);
    actions(&mut leech);
    let mut t = now;
    let mut got = 0;
    let mut pending: Vec<u32> = Vec::new();
    while got < 8 && t < now + secs(60) {
        pending.extend(origin_fetches(&mut leech, t, t).into_iter().map(|(p, _)| p));
        assert!(pending.len() <= 1, "one piece at a time: {pending:?}");
        if let Some(piece) = pending.pop() {
            for action in origin_delivers(&mut leech, t, piece) {
                if let Action::FetchFromOrigin { piece, .. } = action {
                    pending.push(piece);
                }
            }
            got += 1;
        }
        t += std::time::Duration::from_millis(500);
    }
    assert!(leech.is_complete(), "{got} pieces by {:?}", t - now);
    assert!(t <= now + secs(10), "done {:?} after the start", t - now);
}

#[test]
fn a_spent_ceiling_makes_a_stalled_peer_wait_longer_but_it_still_finishes() {
    let now = Instant::now();
    let (mut leech, key) = with_origin(now, Message::HaveAll, 1);
    leech.set_origin_ceiling(Some(65536));
    leech.handle_swarm_origin_bytes(65536); // the tracker: spent
    actions(&mut leech);
    leech.handle_message(now, key, &Message::Choke).unwrap();
    let fetches = origin_fetches(&mut leech, now, now + secs(40));
    let &(_, when) = fetches.first().expect("the download does not hang");
    assert_eq!(when.duration_since(now), secs(20), "{fetches:?}");
}

/// A `have` for a piece the peer lacks goes at once (it may want it from
/// us); one for a piece the peer has waits for the next tick, with the
/// others held for that peer, so they share a packet.
#[test]
fn haves_for_pieces_a_peer_has_wait_for_the_tick() {
    let now = Instant::now();
    let mut leech = swarm(id(b'a'), Bitfield::new(12), 12, 65536, now);
    let source = leech
        .handle_peer_connected(now, addr(6881), true, caps(id(b'b')))
        .unwrap();
    let lacking = leech
        .handle_peer_connected(now, addr(6882), true, caps(id(b'c')))
        .unwrap();
    leech
        .handle_message(now, source, &Message::HaveAll)
        .unwrap();
    leech
        .handle_message(now, lacking, &Message::HaveNone)
        .unwrap();
    leech
        .handle_message(now, source, &Message::Unchoke)
        .unwrap();
    let verify = serve(&mut leech, source, now, 2);
    assert!((2..12).contains(&verify.len()), "{verify:?}");
    for &piece in &verify {
        leech.handle_piece_checked(now, piece, true, &[]);
    }
    let sent = actions(&mut leech);
    for &piece in &verify {
        assert!(sent.contains(&Action::Send(lacking, Outgoing::Have(piece))));
        assert!(!sent.contains(&Action::Send(source, Outgoing::Have(piece))));
    }
    leech.handle_timeout(now + std::time::Duration::from_secs(1));
    let held: Vec<u32> = actions(&mut leech)
        .into_iter()
        .filter_map(|action| match action {
            Action::Send(k, Outgoing::Have(piece)) if k == source => Some(piece),
            _ => None,
        })
        .collect();
    assert_eq!(held, verify, "held haves go out together at the tick");
}
