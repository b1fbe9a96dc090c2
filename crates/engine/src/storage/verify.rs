//! Checking every piece of a release, on all cores: how a seed proves the
//! files it is about to share are the ones the torrent describes.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use meta::layout::{Layout, PieceVerdict};

use super::error::StorageError;

/// Memory all checking threads may hold in piece buffers together: with
/// 16 MiB pieces that still allows 64 threads.
const BUFFER_BUDGET: u64 = 1 << 30;

/// Checks every piece of `layout` with `check_piece`; `progress` hears of
/// each piece's data bytes (pad bytes left out) once checked, so they add
/// up to `Torrent::total_size`.
pub(super) fn verify_all(
    layout: &Layout,
    check_piece: impl Fn(u32) -> Result<PieceVerdict, StorageError> + Sync,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<Vec<bool>, StorageError> {
    let count = layout.piece_count();
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let by_memory = (BUFFER_BUDGET / layout.piece_length().max(1)).max(1);
    let threads = cores
        .min(usize::try_from(by_memory).unwrap_or(usize::MAX))
        .min(count.max(1) as usize);
    let next = AtomicU32::new(0);
    let failed = AtomicBool::new(false);
    let worker = || -> Result<Vec<(u32, bool)>, StorageError> {
        let mut verdicts = Vec::new();
        while !failed.load(Ordering::Relaxed) {
            let piece = next.fetch_add(1, Ordering::Relaxed);
            if piece >= count {
                break;
            }
            match check_piece(piece) {
                Ok(verdict) => verdicts.push((piece, verdict.ok)),
                Err(e) => {
                    failed.store(true, Ordering::Relaxed);
                    return Err(e);
                }
            }
            let data: u32 = layout.spans(piece).iter().map(|s| s.length).sum();
            progress(u64::from(data));
        }
        Ok(verdicts)
    };
    let results: Vec<_> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads).map(|_| scope.spawn(worker)).collect();
        handles.into_iter().map(|h| h.join()).collect()
    });
    let mut valid = vec![false; count as usize];
    for result in results {
        // A checker that panicked (a bug) vouches for nothing: the pieces
        // it checked stay invalid, and the others are still checked.
        let verdicts = result.unwrap_or_else(|_| Ok(Vec::new()))?;
        for (piece, ok) in verdicts {
            valid[piece as usize] = ok;
        }
    }
    Ok(valid)
}
