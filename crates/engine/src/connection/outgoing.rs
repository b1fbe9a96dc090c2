//! What a connection's writer gathers for one system call: small
//! messages and piece headers copied together, blocks of piece data
//! referenced where they were read from the disk, all written with one
//! vectored write.

use std::collections::VecDeque;
use std::io::IoSlice;

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::AsyncWriteExt;
use tokio::net::tcp::OwnedWriteHalf;

/// Slices handed to one vectored write (Linux takes up to 1024).
const MAX_WRITE_SLICES: usize = 64;

/// What the writer has gathered for one write: the small messages and
/// piece headers are copied into `small`, block data is only referenced.
#[derive(Debug, Default)]
pub(crate) struct Outgoing {
    chunks: VecDeque<Bytes>,
    small: BytesMut,
    /// Bytes gathered and not yet written.
    len: usize,
}

impl Outgoing {
    pub(crate) fn push_small(&mut self, bytes: &[u8]) {
        self.small.extend_from_slice(bytes);
        self.len += bytes.len();
    }

    pub(crate) fn push_shared(&mut self, data: Bytes) {
        self.seal_small();
        self.len += data.len();
        self.chunks.push_back(data);
    }

    fn seal_small(&mut self) {
        if !self.small.is_empty() {
            self.chunks.push_back(self.small.split().freeze());
        }
    }

    /// Writes everything gathered, several chunks per system call.
    pub(crate) async fn write_to(&mut self, socket: &mut OwnedWriteHalf) -> std::io::Result<()> {
        self.seal_small();
        while !self.chunks.is_empty() {
            let mut slices = [IoSlice::new(&[]); MAX_WRITE_SLICES];
            let count = self.chunks.len().min(MAX_WRITE_SLICES);
            for (slice, chunk) in slices.iter_mut().zip(&self.chunks) {
                *slice = IoSlice::new(chunk);
            }
            let mut written = socket.write_vectored(&slices[..count]).await?;
            if written == 0 {
                return Err(std::io::ErrorKind::WriteZero.into());
            }
            self.len = self.len.saturating_sub(written);
            while written > 0 {
                let Some(front) = self.chunks.front_mut() else {
                    break;
                };
                if written < front.len() {
                    front.advance(written);
                    break;
                }
                written -= front.len();
                self.chunks.pop_front();
            }
        }
        Ok(())
    }
}

impl Outgoing {
    /// Whether the writer should stop gathering and write.
    pub(crate) fn is_full(&self, max_bytes: usize) -> bool {
        self.len >= max_bytes || self.chunks.len() >= MAX_WRITE_SLICES - 2
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::AsyncReadExt;

    use super::*;

    /// More chunks than one vectored write takes, small and shared mixed,
    /// arrive whole and in order, however the kernel splits the writes.
    #[tokio::test]
    async fn everything_gathered_arrives_in_order() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let reader = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut received = Vec::new();
            socket.read_to_end(&mut received).await.unwrap();
            received
        });
        let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let (read_half, mut write_half) = stream.into_split();
        let mut out = Outgoing::default();
        let mut expected = Vec::new();
        for i in 0..3 * MAX_WRITE_SLICES {
            let header = [i as u8; 13];
            let block = Bytes::from(vec![(i * 7) as u8; 16_384 + i]);
            out.push_small(&header);
            out.push_shared(block.clone());
            expected.extend_from_slice(&header);
            expected.extend_from_slice(&block);
        }
        out.push_small(b"tail");
        expected.extend_from_slice(b"tail");
        out.write_to(&mut write_half).await.unwrap();
        assert_eq!(out.len, 0);
        assert!(out.chunks.is_empty());
        drop(write_half);
        drop(read_half);
        let received = reader.await.unwrap();
        assert_eq!(received.len(), expected.len());
        assert!(received == expected);
    }
}
