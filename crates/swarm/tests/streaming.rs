//! Streaming priority, decided by one `Swarm` driven by hand: a reader's
//! cursor makes the picker (and the origin, where peers cannot help) fetch
//! the pieces just ahead of it first, in order; without a reader the
//! picker is rarest-first as before.

#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use swarm::{Action, Bitfield, Outgoing, PeerCaps, PeerKey, Swarm, SwarmSettings};
use testkit::layout::synthetic_layout;
use wire::{BlockRef, Message};

const PIECES: u32 = 64;
const PIECE_LENGTH: u64 = 64 * 1024;

fn caps(first: u8) -> PeerCaps {
    let mut peer_id = [b'x'; 20];
    peer_id[0] = first;
    PeerCaps {
        fast: true,
        extended: false,
        peer_id,
        origin_share_id: None,
    }
}

fn leech(now: Instant) -> Swarm {
    let layout = synthetic_layout(PIECES, PIECE_LENGTH);
    Swarm::new(
        layout,
        Bitfield::new(PIECES),
        SwarmSettings::default(),
        7,
        caps(b'a').peer_id,
        now,
    )
}

fn requests(swarm: &mut Swarm, key: PeerKey) -> Vec<BlockRef> {
    std::iter::from_fn(|| swarm.poll_action())
        .filter_map(|action| match action {
            Action::Send(k, Outgoing::Request(block)) if k == key => Some(block),
            _ => None,
        })
        .collect()
}

fn seed_peer(swarm: &mut Swarm, now: Instant) -> PeerKey {
    let addr = SocketAddr::from(([10, 0, 0, 1], 6881));
    let key = swarm
        .handle_peer_connected(now, addr, true, caps(b'b'))
        .unwrap();
    swarm.handle_message(now, key, &Message::HaveAll).unwrap();
    key
}

/// The distinct pieces of `blocks`, in the order first asked for.
fn pieces(blocks: &[BlockRef]) -> Vec<u32> {
    let mut pieces: Vec<u32> = Vec::new();
    for block in blocks {
        if !pieces.contains(&block.piece) {
            pieces.push(block.piece);
        }
    }
    pieces
}

#[test]
fn a_reader_at_the_start_gets_the_first_pieces_in_order() {
    let now = Instant::now();
    let mut swarm = leech(now);
    let key = seed_peer(&mut swarm, now);
    swarm.set_stream_cursor(now, 1, 0);
    swarm.handle_message(now, key, &Message::Unchoke).unwrap();
    let asked = pieces(&requests(&mut swarm, key));
    assert!(!asked.is_empty());
    let window = swarm.stream_window().unwrap();
    assert_eq!(window.start, 0);
    let in_window: Vec<u32> = asked
        .iter()
        .copied()
        .filter(|p| window.contains(p))
        .collect();
    assert_eq!(
        in_window,
        (0..in_window.len() as u32).collect::<Vec<_>>(),
        "window pieces are asked for in order, from the cursor: {asked:?}"
    );
    assert_eq!(asked[0], 0);
}

#[test]
fn a_reader_further_on_moves_the_window_and_leaving_clears_it() {
    let now = Instant::now();
    let mut swarm = leech(now);
    let key = seed_peer(&mut swarm, now);
    // Byte 40 of piece 20: the reader needs piece 20 next.
    swarm.set_stream_cursor(now, 9, 20 * PIECE_LENGTH + 40);
    // A second reader further on does not move the window.
    swarm.set_stream_cursor(now, 10, 50 * PIECE_LENGTH);
    swarm.handle_message(now, key, &Message::Unchoke).unwrap();
    let asked = pieces(&requests(&mut swarm, key));
    assert_eq!(asked[0], 20, "{asked:?}");
    assert_eq!(swarm.stream_window().unwrap().start, 20);
    swarm.remove_stream_cursor(now, 9);
    assert_eq!(swarm.stream_window().unwrap().start, 50);
    swarm.remove_stream_cursor(now, 10);
    assert_eq!(swarm.stream_window(), None, "no reader, no window");
    // Offsets past the end are clamped, never a panic or a window outside.
    swarm.set_stream_cursor(now, 11, u64::MAX);
    assert!(swarm.stream_window().is_none_or(|w| w.end <= PIECES));
}

#[test]
fn without_a_reader_pieces_are_not_asked_in_order() {
    let now = Instant::now();
    let mut swarm = leech(now);
    let key = seed_peer(&mut swarm, now);
    swarm.handle_message(now, key, &Message::Unchoke).unwrap();
    let asked = pieces(&requests(&mut swarm, key));
    assert!(asked.len() >= 2);
    let ordered: Vec<u32> = (0..asked.len() as u32).collect();
    assert_ne!(asked, ordered, "rarest-first with random ties, as before");
}

#[test]
fn the_window_grows_with_the_read_rate() {
    let start = Instant::now();
    let mut swarm = leech(start);
    swarm.set_stream_cursor(start, 1, 0);
    let first = swarm.stream_window().unwrap();
    // Read 3 pieces a second for four seconds.
    for tick in 1..=40u64 {
        let now = start + Duration::from_millis(100 * tick);
        swarm.set_stream_cursor(now, 1, tick * 3 * PIECE_LENGTH / 10);
    }
    let later = swarm.stream_window().unwrap();
    assert_eq!(later.start, 12);
    assert!(
        later.len() > first.len(),
        "window {first:?} then {later:?} at 3 pieces a second"
    );
}

#[test]
fn with_no_peers_the_origin_serves_the_window_in_order() {
    let now = Instant::now();
    let mut swarm = leech(now);
    swarm.set_origin(now, &caps(b'a').peer_id);
    swarm.set_stream_cursor(now, 1, 10 * PIECE_LENGTH);
    let mut fetched = Vec::new();
    let later = now + Duration::from_secs(3);
    swarm.handle_timeout(later);
    for action in std::iter::from_fn(|| swarm.poll_action()) {
        if let Action::FetchFromOrigin { piece, .. } = action {
            fetched.push(piece);
        }
    }
    assert!(!fetched.is_empty());
    assert_eq!(
        fetched,
        (10..10 + fetched.len() as u32).collect::<Vec<_>>(),
        "the origin fetches the reader's pieces, in order"
    );
}
