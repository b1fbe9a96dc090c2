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

#[test]
fn a_starting_agent_waits_for_the_tracker_before_it_uses_the_origin_alone() {
    let now = Instant::now();
    // Every agent of a flash crowd starts alone; were each to take a piece
    // at once, a crowd of 1,000 would cost the origin 1,000 pieces.
    let mut waiting = swarm(id(b'a'), Bitfield::new(8), 8, 65536, now);
    waiting.set_origin(now, &id(b'a'));
    let before = origin_fetches(&mut waiting, now, now + secs(1));
    assert_eq!(before, vec![], "no fetch before the tracker answers");
    // The tracker names nobody: we are alone, and the origin serves us.
    waiting.handle_tracker_answer(now + secs(1), [], Some(1));
    let after = origin_fetches(&mut waiting, now + secs(1), now + secs(1));
    assert_eq!(after.len(), 1, "{after:?}");

    // A tracker that never answers holds the origin back 2 s at most.
    let mut unanswered = swarm(id(b'a'), Bitfield::new(8), 8, 65536, now);
    unanswered.set_origin(now, &id(b'a'));
    let fetches = origin_fetches(&mut unanswered, now, now + secs(10));
    let &(_, when) = fetches.first().expect("the origin serves a lone agent");
    assert_eq!(when.duration_since(now), secs(2));
}

#[test]
fn in_a_swarm_far_larger_than_our_view_a_stalled_agent_waits_to_own_pieces() {
    let now = Instant::now();
    // One peer in view, holding nothing; the tracker counts 1,000 agents.
    // Rendezvous between the two of us would make us own half the pieces,
    // as it would for every pair in the swarm: 500 copies of each.
    let (mut leech, _) = with_origin(now, Message::HaveNone, 1);
    leech.handle_tracker_answer(now, [], Some(1000));
    actions(&mut leech);
    let early = origin_fetches(&mut leech, now, now + secs(11));
    assert_eq!(early, vec![], "we own no piece of 8 in a swarm of 1,000");
    // Nothing arrives, so the claim widens every 12 s until pieces are
    // ours: the download does not hang.
    let mut t = now + secs(11);
    let mut first = None;
    let mut pending: Vec<u32> = Vec::new();
    while !leech.is_complete() && t < now + secs(300) {
        pending.extend(origin_fetches(&mut leech, t, t).into_iter().map(|(p, _)| p));
        if let Some(piece) = pending.pop() {
            first.get_or_insert(t);
            for action in origin_delivers(&mut leech, t, piece) {
                if let Action::FetchFromOrigin { piece, .. } = action {
                    pending.push(piece);
                }
            }
        }
        t += std::time::Duration::from_millis(500);
    }
    assert!(
        leech.is_complete(),
        "{} pieces by {:?}",
        leech.have().count(),
        t - now
    );
    let first = first.expect("a first fetch").duration_since(now);
    assert!(first >= secs(12), "first fetch {first:?} after the start");
}

#[test]
fn a_tracker_that_inflates_the_swarm_only_delays_the_origin() {
    let now = Instant::now();
    // A count of 2^40 agents is capped at 1,000,000: the claim widens to
    // cover the pieces within minutes, not never.
    let (mut leech, _) = with_origin(now, Message::HaveNone, 1);
    leech.handle_tracker_answer(now, [], Some(1 << 40));
    actions(&mut leech);
    let fetches = origin_fetches(&mut leech, now, now + secs(600));
    let &(_, when) = fetches.first().expect("the origin is used in the end");
    assert!(when.duration_since(now) <= secs(300), "{fetches:?}");
}

#[test]
fn a_piece_fetched_from_the_origin_as_its_owner_is_abandoned_once_a_peer_has_it() {
    let now = Instant::now();
    let (mut leech, key) = with_origin(now, Message::HaveNone, 1);
    leech.handle_tracker_answer(now, [], Some(2));
    let fetches = origin_fetches(&mut leech, now, now + secs(1));
    let &(piece, when) = fetches.first().expect("we own some of the 8 pieces");
    // The other agent got the piece meanwhile (from a third): the origin
    // need not send it again.
    leech
        .handle_message(when, key, &Message::Have { piece })
        .unwrap();
    leech.handle_timeout(when + secs(2));
    let cancelled = actions(&mut leech)
        .into_iter()
        .any(|a| matches!(a, Action::CancelOriginFetch { piece: p } if p == piece));
    assert!(cancelled, "the fetch of piece {piece} is abandoned");
    let late = BlockRef {
        piece,
        offset: 0,
        length: BLOCK,
    };
    assert!(
        !leech.handle_origin_block(when + secs(2), late),
        "a block of it that arrives anyway is refused"
    );
}

/// A client that pipelines by its rate (Transmission 3.00 asks for 10 s
/// worth) sent four requests per block to a lone seed: every one past our
/// upload queue was rejected and asked again. BEP 10's `reqq` tells it how
/// many we queue, and the queue holds to it.
#[test]
fn a_peer_with_the_extension_protocol_hears_how_many_requests_we_queue() {
    let now = Instant::now();
    let queue = SwarmSettings::default().max_upload_queue;
    let pieces = 64;
    let mut seed = swarm(id(b'a'), Bitfield::full(pieces), pieces, 512 * 1024, now);
    seed.handle_peer_connected(now, addr(6882), false, caps(id(b'c')))
        .unwrap();
    let mut extended = caps(id(b'b'));
    extended.extended = true;
    let key = seed
        .handle_peer_connected(now, addr(6881), false, extended)
        .unwrap();
    let sent = actions(&mut seed);
    let handshakes: Vec<(PeerKey, &Vec<u8>)> = sent
        .iter()
        .filter_map(|a| match a {
            Action::Send(k, Outgoing::ExtensionHandshake(payload)) => Some((*k, payload)),
            _ => None,
        })
        .collect();
    assert_eq!(handshakes.len(), 1, "only the peer with the bit: {sent:?}");
    let (to, payload) = handshakes[0];
    assert_eq!(to, key);
    let first_to_key = sent
        .iter()
        .find(|a| matches!(a, Action::Send(k, _) if *k == key));
    assert!(
        matches!(
            first_to_key,
            Some(Action::Send(_, Outgoing::ExtensionHandshake(_)))
        ),
        "BEP 10: the extension handshake comes first, got {first_to_key:?}"
    );
    let handshake = wire::ExtensionHandshake::decode(payload).unwrap();
    assert_eq!(handshake.request_queue, Some(queue as u32));
    assert!(
        handshake.messages.is_empty(),
        "we offer no extension messages"
    );

    seed.handle_message(now, key, &Message::HaveNone).unwrap();
    seed.handle_message(now, key, &Message::Interested).unwrap();
    actions(&mut seed);
    let blocks_per_piece = 512 * 1024 / BLOCK;
    let block = |index: usize| BlockRef {
        piece: (index as u32) / blocks_per_piece,
        offset: ((index as u32) % blocks_per_piece) * BLOCK,
        length: BLOCK,
    };
    for index in 0..=queue {
        seed.handle_message(now, key, &Message::Request(block(index)))
            .unwrap();
    }
    let rejected: Vec<BlockRef> = actions(&mut seed)
        .into_iter()
        .filter_map(|a| match a {
            Action::Send(k, Outgoing::Reject(b)) if k == key => Some(b),
            _ => None,
        })
        .collect();
    assert_eq!(
        rejected,
        vec![block(queue)],
        "the first reqq requests queue, the next is rejected"
    );
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

/// A fresh seed waits half a second for a crowd before showing a lone
/// downloader everything; a browser's stream waits on that, so the
/// decision comes at the end of the wait, not at the tick after it.
#[test]
fn a_lone_downloader_is_shown_everything_when_the_wait_for_a_crowd_ends() {
    let start = Instant::now();
    let pieces = 16;
    let mut seed = swarm(id(b'a'), Bitfield::full(pieces), pieces, 65536, start);
    seed.handle_timeout(start);
    let joined = start + std::time::Duration::from_millis(200);
    let key = seed
        .handle_peer_connected(joined, addr(6881), false, caps(id(b'b')))
        .unwrap();
    seed.handle_message(joined, key, &Message::Interested)
        .unwrap();
    seed.handle_timeout(start + std::time::Duration::from_millis(500));
    actions(&mut seed);
    let decided = joined + std::time::Duration::from_millis(500);
    assert_eq!(seed.poll_timeout(), decided, "woken when the wait ends");
    seed.handle_timeout(decided);
    let shown = actions(&mut seed)
        .into_iter()
        .filter(|a| matches!(a, Action::Send(k, Outgoing::Have(_)) if *k == key))
        .count();
    assert!(
        shown >= pieces as usize - 2,
        "{shown} of {pieces} pieces shown"
    );
}
