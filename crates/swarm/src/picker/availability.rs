//! Availability: how many connected peers have each piece, kept sorted
//! incrementally as libtorrent does. `order` holds the pieces sorted by
//! availability and `bucket_start[a]` is where pieces of availability `a`
//! begin, so a have message moves one piece one slot; rarest-first picking
//! then reads `order` from the front.

use super::PiecePicker;
use crate::bitfield::Bitfield;

impl PiecePicker {
    pub fn availability(&self, piece: u32) -> u32 {
        self.availability[piece as usize]
    }

    fn swap(&mut self, a: u32, b: u32) {
        let (pa, pb) = (self.order[a as usize], self.order[b as usize]);
        self.order.swap(a as usize, b as usize);
        self.position[pa as usize] = b;
        self.position[pb as usize] = a;
    }

    /// One more connected peer has `piece`.
    pub fn increment(&mut self, piece: u32) {
        let a = self.availability[piece as usize] as usize;
        if a + 2 >= self.bucket_start.len() {
            self.bucket_start.push(self.order.len() as u32);
        }
        // Move to the end of bucket a, then shrink bucket a by one.
        let last = self.bucket_start[a + 1] - 1;
        self.swap(self.position[piece as usize], last);
        self.bucket_start[a + 1] -= 1;
        self.availability[piece as usize] += 1;
    }

    /// One fewer connected peer has `piece`.
    pub fn decrement(&mut self, piece: u32) {
        let a = self.availability[piece as usize] as usize;
        if a == 0 {
            return;
        }
        let first = self.bucket_start[a];
        self.swap(self.position[piece as usize], first);
        self.bucket_start[a] += 1;
        self.availability[piece as usize] -= 1;
    }

    pub fn add_peer_pieces(&mut self, pieces: &Bitfield) {
        for piece in pieces.ones() {
            self.increment(piece);
        }
    }

    pub fn remove_peer_pieces(&mut self, pieces: &Bitfield) {
        for piece in pieces.ones() {
            self.decrement(piece);
        }
    }
}
