use super::*;
use rand::SeedableRng;

fn layout(pieces: u32) -> Layout {
    use meta::{path::SafePath, FileEntry, InfoHashes, SignatureStatus, Torrent};
    let piece_length = 32 * 1024;
    let torrent = Torrent {
        info_hashes: InfoHashes {
            v1: Some([0; 20]),
            v2: None,
        },
        name: "t".into(),
        multi_file: false,
        piece_length,
        files: vec![FileEntry {
            path: SafePath::new(vec!["t".into()]).unwrap(),
            length: u64::from(pieces) * piece_length - 100,
            offset: 0,
            pad: false,
            pieces_root: None,
        }],
        v1_piece_hashes: vec![[0; 20]; pieces as usize],
        piece_layers: Default::default(),
        trackers: vec![],
        web_seeds: vec![],
        creation_date: None,
        created_by: None,
        comment: None,
        signature: SignatureStatus::Absent,
        info_bytes: vec![],
    };
    Layout::new(&torrent)
}

/// The incremental availability order stays sorted and consistent
/// through any sequence of increments and decrements.
#[test]
fn availability_order_stays_sorted() {
    let mut rng = SmallRng::seed_from_u64(9);
    let mut picker = PiecePicker::new(layout(50), Bitfield::new(50), &mut rng);
    let mut naive = [0u32; 50];
    for _ in 0..20_000 {
        let piece = rng.gen_range(0..50);
        if rng.gen_bool(0.55) {
            picker.increment(piece);
            naive[piece as usize] += 1;
        } else if naive[piece as usize] > 0 {
            picker.decrement(piece);
            naive[piece as usize] -= 1;
        }
    }
    let order: Vec<u32> = picker
        .order
        .iter()
        .map(|&p| picker.availability(p))
        .collect();
    assert!(order.windows(2).all(|w| w[0] <= w[1]), "{order:?}");
    for piece in 0..50u32 {
        assert_eq!(picker.availability(piece), naive[piece as usize]);
        assert_eq!(
            picker.order[picker.position[piece as usize] as usize],
            piece
        );
    }
}

#[test]
fn rarest_piece_first_and_whole_pieces_per_peer() {
    let mut rng = SmallRng::seed_from_u64(1);
    let mut picker = PiecePicker::new(layout(4), Bitfield::new(4), &mut rng);
    let everything = Bitfield::full(4);
    picker.add_peer_pieces(&everything);
    let mut common = Bitfield::new(4);
    for p in [0, 1, 3] {
        common.set(p);
    }
    picker.add_peer_pieces(&common);
    // Piece 2 is held by one peer only: it comes first.
    let picked = picker.pick(PeerKey(1), &everything, 2, usize::MAX, &mut rng);
    assert_eq!(
        picked.iter().map(|b| b.piece).collect::<Vec<_>>(),
        vec![2, 2]
    );
    // The same peer continues its own piece before starting another.
    picker.abort_request(PeerKey(1), picked[1]);
    let again = picker.pick(PeerKey(1), &everything, 1, usize::MAX, &mut rng);
    assert_eq!(again[0].piece, 2);
    assert_eq!(again[0].offset, BLOCK);
}

#[test]
fn endgame_asks_a_second_peer_and_the_first_copy_wins() {
    let mut rng = SmallRng::seed_from_u64(2);
    let mut picker = PiecePicker::new(layout(1), Bitfield::new(1), &mut rng);
    let all = Bitfield::full(1);
    picker.add_peer_pieces(&all);
    picker.add_peer_pieces(&all);
    let first = picker.pick(PeerKey(1), &all, 10, usize::MAX, &mut rng);
    assert_eq!(first.len(), 2);
    assert!(picker.in_endgame());
    let second = picker.pick(PeerKey(2), &all, 10, usize::MAX, &mut rng);
    assert_eq!(second, first, "endgame duplicates the blocks in flight");
    let arrival = picker.on_block(PeerKey(2), first[0]);
    assert!(arrival.accepted);
    assert_eq!(arrival.also_requested_from, vec![PeerKey(1)]);
    assert!(
        !picker.on_block(PeerKey(1), first[0]).accepted,
        "a late copy is not stored"
    );
    let last = picker.on_block(PeerKey(1), first[1]);
    assert!(last.accepted && last.piece_complete);
    assert_eq!(picker.senders(0), vec![PeerKey(2), PeerKey(1)]);
}

#[test]
fn endgame_copies_are_capped_per_pick() {
    let mut rng = SmallRng::seed_from_u64(3);
    let mut picker = PiecePicker::new(layout(2), Bitfield::new(2), &mut rng);
    let all = Bitfield::full(2);
    picker.add_peer_pieces(&all);
    picker.add_peer_pieces(&all);
    let first = picker.pick(PeerKey(1), &all, 10, 0, &mut rng);
    assert_eq!(first.len(), 4, "two pieces of two blocks");
    assert!(picker.in_endgame());
    let copies = picker.pick(PeerKey(2), &all, 10, 1, &mut rng);
    assert_eq!(copies.len(), 1, "one copy allowed");
    assert!(picker.pick(PeerKey(2), &all, 10, 0, &mut rng).is_empty());
}
