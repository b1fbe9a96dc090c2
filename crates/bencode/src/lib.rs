//! Bencoding (BEP 3 §bencoding): a decoder that borrows from its input and
//! records the exact byte span of every value, and an encoder that writes the
//! canonical form (dictionary keys sorted, no leading zeros).
//!
//! Spans matter because an info-hash is the hash of the `info` dictionary's
//! bytes *as they appear in the file*; re-encoding a decoded value could
//! change them (unsorted keys in the wild) and so change the hash.
//!
//! Input is untrusted. Nothing is allocated in proportion to a length the
//! input claims: byte strings borrow from the input and must fit in it,
//! nesting depth and the number of values are capped by [`Limits`].

mod decode;
mod encode;

pub use decode::{decode, decode_prefix, DecodeError, DecodeErrorKind, Limits, Value, ValueKind};
pub use encode::Bencode;
