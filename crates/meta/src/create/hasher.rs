//! Hashing a release for a new torrent, on every core.
//!
//! One thread reads each file front to back in chunks of whole pieces (the
//! disk likes sequential reads); worker threads hash chunks as they come,
//! each piece both ways at once: SHA-1 for v1 and the SHA-256 merkle node
//! for v2. Buffers go back to the reader for reuse, so memory stays at a
//! few chunks whatever the release size.

use std::fs::File;
use std::io::Read;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Mutex};

use sha1::{Digest as _, Sha1};

use super::error::CreateError;
use super::source_file::SourceFile;
use crate::merkle::{self, Hash256, BLOCK_SIZE};
use crate::torrent::Hash160;

/// Aim for chunks of about this many bytes: big enough to keep per-message
/// overhead negligible with 16 KiB pieces, small enough to keep all workers fed.
const CHUNK_TARGET_BYTES: u64 = 4 * 1024 * 1024;

/// Per-file hashing results.
#[derive(Debug, Clone, Default)]
pub struct FileHashes {
    /// v1 SHA-1 of each of the file's pieces (zero-padded where the file
    /// is followed by a pad file); empty unless v1 hashes were asked for.
    pub v1: Vec<Hash160>,
    /// The v2 piece layer; for a file of one piece or less, the one entry is
    /// already the file's pieces root.
    pub v2_layer: Vec<Hash256>,
}

pub struct HashJob<'a> {
    pub files: &'a [SourceFile],
    pub piece_length: u64,
    /// Compute v1 piece hashes too (hybrid torrents).
    pub with_v1: bool,
    /// Zero-pad each file's last v1 piece to a full piece (multi-file hybrid).
    pub pad_v1_tails: bool,
    pub threads: usize,
}

struct Chunk {
    file: usize,
    first_piece: u64,
    data: Vec<u8>,
}

struct ChunkResult {
    file: usize,
    first_piece: u64,
    v1: Vec<Hash160>,
    v2: Vec<Hash256>,
    buffer: Vec<u8>,
}

/// Hashes every file; `progress` is told of each chunk's bytes as it is done.
pub fn hash_files(
    job: &HashJob<'_>,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<Vec<FileHashes>, CreateError> {
    let pieces_per_chunk = (CHUNK_TARGET_BYTES / job.piece_length).max(1);
    let chunk_bytes = (pieces_per_chunk * job.piece_length) as usize;
    let threads = job.threads.max(1);
    let mut results: Vec<FileHashes> = job
        .files
        .iter()
        .map(|f| {
            let pieces = f.length.div_ceil(job.piece_length) as usize;
            FileHashes {
                v1: if job.with_v1 {
                    vec![[0; 20]; pieces]
                } else {
                    Vec::new()
                },
                v2_layer: vec![[0; 32]; pieces],
            }
        })
        .collect();

    let (chunk_tx, chunk_rx) = mpsc::sync_channel::<Chunk>(threads * 2);
    let chunk_rx = Mutex::new(chunk_rx);
    let (result_tx, result_rx) = mpsc::channel::<ChunkResult>();
    let (spare_tx, spare_rx) = mpsc::channel::<Vec<u8>>();
    let failed = AtomicBool::new(false);

    std::thread::scope(|scope| -> Result<(), CreateError> {
        let reader = scope.spawn(|| read_chunks(job, chunk_bytes, chunk_tx, spare_rx, &failed));
        for _ in 0..threads {
            let result_tx = result_tx.clone();
            let chunk_rx = &chunk_rx;
            scope.spawn(move || loop {
                let next = chunk_rx.lock().map(|rx| rx.recv());
                let Ok(Ok(chunk)) = next else { break };
                let result = hash_chunk(job, chunk);
                progress(result.buffer.len() as u64);
                if result_tx.send(result).is_err() {
                    break;
                }
            });
        }
        drop(result_tx);
        for result in result_rx {
            let file = &mut results[result.file];
            let first = result.first_piece as usize;
            file.v2_layer[first..first + result.v2.len()].copy_from_slice(&result.v2);
            if job.with_v1 {
                file.v1[first..first + result.v1.len()].copy_from_slice(&result.v1);
            }
            // The reader may be done and gone; then the buffer is just dropped.
            let _ = spare_tx.send(result.buffer);
        }
        reader.join().unwrap_or_else(|_| {
            failed.store(true, Ordering::Relaxed);
            Err(CreateError::Internal("the reader thread panicked".into()))
        })
    })?;
    Ok(results)
}

/// Reads every file in order and sends its pieces in chunks. Stops early
/// when a worker has given up.
fn read_chunks(
    job: &HashJob<'_>,
    chunk_bytes: usize,
    chunks: mpsc::SyncSender<Chunk>,
    spares: mpsc::Receiver<Vec<u8>>,
    failed: &AtomicBool,
) -> Result<(), CreateError> {
    for (index, source) in job.files.iter().enumerate() {
        if source.length == 0 {
            continue;
        }
        let io_error = |e| CreateError::io(&source.disk_path, e);
        let mut file = File::open(&source.disk_path).map_err(io_error)?;
        let mut remaining = source.length;
        let mut piece = 0u64;
        while remaining > 0 && !failed.load(Ordering::Relaxed) {
            let take = remaining.min(chunk_bytes as u64) as usize;
            let mut data = spares.try_recv().unwrap_or_default();
            data.resize(take, 0);
            file.read_exact(&mut data).map_err(|e| match e.kind() {
                std::io::ErrorKind::UnexpectedEof => {
                    CreateError::FileChanged(source.disk_path.clone())
                }
                _ => io_error(e),
            })?;
            remaining -= take as u64;
            let pieces = (take as u64).div_ceil(job.piece_length);
            if chunks
                .send(Chunk {
                    file: index,
                    first_piece: piece,
                    data,
                })
                .is_err()
            {
                return Ok(());
            }
            piece += pieces;
        }
        // A file that grew while we read it would not match its torrent.
        let mut probe = [0u8; 1];
        if file.read(&mut probe).map_err(io_error)? != 0 {
            return Err(CreateError::FileChanged(source.disk_path.clone()));
        }
    }
    Ok(())
}

fn hash_chunk(job: &HashJob<'_>, chunk: Chunk) -> ChunkResult {
    let source = &job.files[chunk.file];
    let piece_length = job.piece_length as usize;
    let blocks_per_piece = (job.piece_length / BLOCK_SIZE) as usize;
    let whole_file_is_one_piece = source.length <= job.piece_length;
    let mut v1 = Vec::new();
    let mut v2 = Vec::new();
    for piece in chunk.data.chunks(piece_length) {
        let blocks = merkle::block_hashes(piece);
        v2.push(if whole_file_is_one_piece {
            merkle::root_from_blocks(&blocks)
        } else {
            merkle::piece_node(&blocks, blocks_per_piece)
        });
        if job.with_v1 {
            let mut sha1 = Sha1::new();
            sha1.update(piece);
            if job.pad_v1_tails && piece.len() < piece_length {
                update_with_zeros(&mut sha1, piece_length - piece.len());
            }
            v1.push(sha1.finalize().into());
        }
    }
    ChunkResult {
        file: chunk.file,
        first_piece: chunk.first_piece,
        v1,
        v2,
        buffer: chunk.data,
    }
}

fn update_with_zeros(sha1: &mut Sha1, mut count: usize) {
    const ZEROS: [u8; 16 * 1024] = [0; 16 * 1024];
    while count > 0 {
        let n = count.min(ZEROS.len());
        sha1.update(&ZEROS[..n]);
        count -= n;
    }
}
