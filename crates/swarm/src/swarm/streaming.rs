//! Streaming priority: readers of a release (the browser hand-off, or any
//! reader of verified bytes) report where they read next, and the picker
//! fetches a window of pieces ahead of the earliest of them first, in
//! order, rarest-first everywhere else. The window covers
//! [`WINDOW_SECONDS`] of the measured read rate, at least
//! [`MIN_WINDOW_PIECES`] and at most [`MAX_WINDOW_BYTES`], so it grows as
//! the reader speeds up. With no reader the picker is exactly rarest-first.
//!
//! The origin helps a stream only where peers cannot: a window piece no
//! connected peer has, or any window piece while the reader has been
//! waiting for [`STALLED_AFTER`] (`stream_piece_for_origin`, called by the
//! origin planner before its own choice).

use std::time::{Duration, Instant};

use wire::BlockRef;

use super::stream_cursors::Cursor;
use super::Swarm;
use crate::peer::ORIGIN;
use crate::rate::RateMeter;

/// Seconds of reading the window covers.
const WINDOW_SECONDS: u64 = 4;
/// The window never holds fewer pieces than this (a reader just started has
/// no rate yet).
const MIN_WINDOW_PIECES: u64 = 8;
/// Nor more bytes than this (but always `MIN_WINDOW_PIECES`): beyond it,
/// rarest-first keeps the swarm healthy.
const MAX_WINDOW_BYTES: u64 = 256 * 1024 * 1024;
/// Readers tracked at once; more (a misbehaving client opening streams)
/// are not given priority.
const MAX_CURSORS: usize = 64;
/// A reader waiting this long on a piece may have it from the origin.
const STALLED_AFTER: Duration = Duration::from_secs(2);

impl Swarm {
    /// Reader `id` will read the byte at torrent offset `offset` next.
    /// Offsets past the end are clamped.
    pub fn set_stream_cursor(&mut self, now: Instant, id: u64, offset: u64) {
        let layout = self.picker.layout();
        let total = u64::from(layout.piece_count()).saturating_mul(layout.piece_length());
        let offset = offset.min(total);
        let streams = &mut self.streams.cursors;
        let room = streams.len() < MAX_CURSORS;
        match streams.get_mut(&id) {
            Some(cursor) => {
                if offset > cursor.offset {
                    cursor.rate.record(now, offset - cursor.offset);
                }
                if offset != cursor.offset {
                    cursor.moved = now;
                }
                // A seek backwards keeps the rate: the reader is as fast.
                cursor.offset = offset;
            }
            None if room => {
                streams.insert(
                    id,
                    Cursor {
                        offset,
                        rate: RateMeter::new(now),
                        moved: now,
                    },
                );
            }
            None => return,
        }
        self.update_window(now);
    }

    /// Reader `id` is gone.
    pub fn remove_stream_cursor(&mut self, now: Instant, id: u64) {
        if self.streams.cursors.remove(&id).is_some() {
            self.update_window(now);
        }
    }

    /// The pieces fetched first for readers, if any read.
    pub fn stream_window(&self) -> Option<std::ops::Range<u32>> {
        self.picker.window()
    }

    fn update_window(&mut self, now: Instant) {
        let before = self.picker.window();
        let window = self.window_for(now);
        self.picker.set_window(window);
        if self.picker.window() != before && !self.completed {
            self.refill_all(now);
            self.plan_origin(now);
        }
    }

    fn window_for(&mut self, now: Instant) -> Option<std::ops::Range<u32>> {
        let earliest = self.streams.cursors.values_mut().min_by_key(|c| c.offset)?;
        let layout = self.picker.layout();
        let piece_length = layout.piece_length().max(1);
        let count = u64::from(layout.piece_count());
        let start = earliest.offset / piece_length;
        let bytes = earliest
            .rate
            .rate(now)
            .saturating_mul(WINDOW_SECONDS)
            .min(MAX_WINDOW_BYTES);
        let pieces = bytes.div_ceil(piece_length).max(MIN_WINDOW_PIECES);
        let end = start.saturating_add(pieces).min(count);
        let clamp = |n: u64| u32::try_from(n).unwrap_or(u32::MAX);
        Some(clamp(start)..clamp(end))
    }

    /// The origin planner's hook: blocks of one window piece the origin
    /// should fetch for a reader (see the module doc), or none. Marks them
    /// requested by the origin.
    pub(super) fn stream_piece_for_origin(&mut self, now: Instant) -> Vec<BlockRef> {
        let Some(head) = self.picker.first_missing_in_window() else {
            return Vec::new();
        };
        let piece_length = self.picker.layout().piece_length().max(1);
        let stalled = self.streams.cursors.values().any(|c| {
            c.offset / piece_length == u64::from(head)
                && now.saturating_duration_since(c.moved) >= STALLED_AFTER
        });
        let picker = &mut self.picker;
        let unheld: Vec<bool> = picker
            .window()
            .into_iter()
            .flatten()
            .map(|p| picker.availability_of(p) == 0)
            .collect();
        let first = picker.window().map_or(0, |w| w.start);
        picker.pick_window_for_origin(ORIGIN, |piece| {
            stalled
                || unheld
                    .get(piece.saturating_sub(first) as usize)
                    .copied()
                    .unwrap_or(false)
        })
    }
}
