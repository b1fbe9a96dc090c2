//! The decoder: `&[u8]` in, a tree of [`Value`]s borrowing from it out.

use std::ops::Range;

/// Caps that keep a hostile input from costing more than its own size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Deepest nesting of lists and dictionaries accepted.
    pub max_depth: usize,
    /// Most values (of any kind, counting containers) in one document.
    pub max_values: usize,
}

impl Default for Limits {
    /// Generous for torrents with hundreds of thousands of files, small
    /// enough that the decoded tree stays in the tens of MiB.
    fn default() -> Self {
        Limits {
            max_depth: 64,
            max_values: 4_000_000,
        }
    }
}

/// A decoded value and where it stands in the input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Value<'a> {
    pub kind: ValueKind<'a>,
    /// The value's bytes in the input, from its first to its last byte.
    pub span: Range<usize>,
    /// The same bytes, borrowed: hash these, never a re-encoding.
    pub raw: &'a [u8],
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ValueKind<'a> {
    Int(i64),
    Bytes(&'a [u8]),
    List(Vec<Value<'a>>),
    /// Entries in input order; keys are unique (duplicates are rejected).
    Dict(Vec<(&'a [u8], Value<'a>)>),
}

impl<'a> Value<'a> {
    pub fn as_int(&self) -> Option<i64> {
        match self.kind {
            ValueKind::Int(n) => Some(n),
            _ => None,
        }
    }

    pub fn as_bytes(&self) -> Option<&'a [u8]> {
        match self.kind {
            ValueKind::Bytes(b) => Some(b),
            _ => None,
        }
    }

    /// The byte string as UTF-8, if it is a byte string and valid UTF-8.
    pub fn as_str(&self) -> Option<&'a str> {
        self.as_bytes().and_then(|b| std::str::from_utf8(b).ok())
    }

    pub fn as_list(&self) -> Option<&[Value<'a>]> {
        match &self.kind {
            ValueKind::List(items) => Some(items),
            _ => None,
        }
    }

    pub fn as_dict(&self) -> Option<&[(&'a [u8], Value<'a>)]> {
        match &self.kind {
            ValueKind::Dict(entries) => Some(entries),
            _ => None,
        }
    }

    /// Looks a key up in a dictionary; `None` for a missing key or a non-dictionary.
    pub fn get(&self, key: &str) -> Option<&Value<'a>> {
        self.as_dict()?
            .iter()
            .find(|(k, _)| *k == key.as_bytes())
            .map(|(_, v)| v)
    }

    /// A short name of the value's type, for error messages.
    pub fn type_name(&self) -> &'static str {
        match self.kind {
            ValueKind::Int(_) => "integer",
            ValueKind::Bytes(_) => "byte string",
            ValueKind::List(_) => "list",
            ValueKind::Dict(_) => "dictionary",
        }
    }
}

/// Malformed input: what is wrong and at which byte offset.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid bencode at byte {offset}: {kind}")]
pub struct DecodeError {
    pub offset: usize,
    pub kind: DecodeErrorKind,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeErrorKind {
    #[error("input ends in the middle of a value")]
    UnexpectedEnd,
    #[error("unexpected byte 0x{0:02x}")]
    UnexpectedByte(u8),
    #[error("malformed integer")]
    BadInteger,
    #[error("integer does not fit in 64 bits")]
    IntegerOverflow,
    #[error("malformed byte-string length")]
    BadLength,
    #[error("byte string claims {claimed} bytes but only {available} remain")]
    LengthBeyondInput { claimed: u64, available: usize },
    #[error("nesting deeper than {0} levels")]
    TooDeep(usize),
    #[error("more than {0} values")]
    TooManyValues(usize),
    #[error("dictionary key is not a byte string")]
    KeyNotBytes,
    #[error("dictionary key {0:?} appears twice")]
    DuplicateKey(String),
    #[error("{0} bytes after the end of the value")]
    TrailingBytes(usize),
}

/// Decodes exactly one value that fills the whole input.
pub fn decode(input: &[u8], limits: Limits) -> Result<Value<'_>, DecodeError> {
    let (value, used) = decode_prefix(input, limits)?;
    if used != input.len() {
        return Err(DecodeError {
            offset: used,
            kind: DecodeErrorKind::TrailingBytes(input.len() - used),
        });
    }
    Ok(value)
}

/// Decodes one value from the start of the input; returns it and the number
/// of bytes it took. Bytes after it are left alone.
pub fn decode_prefix(input: &[u8], limits: Limits) -> Result<(Value<'_>, usize), DecodeError> {
    let mut decoder = Decoder {
        input,
        pos: 0,
        limits,
        values: 0,
    };
    let value = decoder.value(0)?;
    Ok((value, decoder.pos))
}

struct Decoder<'a> {
    input: &'a [u8],
    pos: usize,
    limits: Limits,
    values: usize,
}

impl<'a> Decoder<'a> {
    fn error(&self, offset: usize, kind: DecodeErrorKind) -> DecodeError {
        DecodeError { offset, kind }
    }

    fn peek(&self) -> Result<u8, DecodeError> {
        self.input
            .get(self.pos)
            .copied()
            .ok_or_else(|| self.error(self.pos, DecodeErrorKind::UnexpectedEnd))
    }

    fn value(&mut self, depth: usize) -> Result<Value<'a>, DecodeError> {
        let start = self.pos;
        self.values += 1;
        if self.values > self.limits.max_values {
            return Err(self.error(
                start,
                DecodeErrorKind::TooManyValues(self.limits.max_values),
            ));
        }
        let kind = match self.peek()? {
            b'i' => ValueKind::Int(self.integer()?),
            b'0'..=b'9' => ValueKind::Bytes(self.bytes()?),
            b'l' => ValueKind::List(self.list(depth)?),
            b'd' => ValueKind::Dict(self.dict(depth)?),
            other => return Err(self.error(start, DecodeErrorKind::UnexpectedByte(other))),
        };
        Ok(Value {
            kind,
            span: start..self.pos,
            raw: &self.input[start..self.pos],
        })
    }

    fn enter(&self, depth: usize) -> Result<usize, DecodeError> {
        if depth >= self.limits.max_depth {
            return Err(self.error(self.pos, DecodeErrorKind::TooDeep(self.limits.max_depth)));
        }
        Ok(depth + 1)
    }

    /// `i<digits>e`: no leading zeros, no `-0`, fits in i64.
    fn integer(&mut self) -> Result<i64, DecodeError> {
        let start = self.pos;
        self.pos += 1; // 'i'
        let rest = &self.input[self.pos..];
        let end = rest
            .iter()
            .position(|&b| b == b'e')
            .ok_or_else(|| self.error(self.input.len(), DecodeErrorKind::UnexpectedEnd))?;
        let digits = &rest[..end];
        let (negative, magnitude) = match digits.split_first() {
            Some((b'-', tail)) => (true, tail),
            _ => (false, digits),
        };
        let leading_zero = magnitude.len() > 1 && magnitude[0] == b'0';
        let negative_zero = negative && magnitude == b"0";
        let well_formed = !magnitude.is_empty()
            && magnitude.iter().all(u8::is_ascii_digit)
            && !leading_zero
            && !negative_zero;
        if !well_formed {
            return Err(self.error(start, DecodeErrorKind::BadInteger));
        }
        let mut n: i64 = 0;
        for &d in magnitude {
            let digit = i64::from(d - b'0');
            n = n
                .checked_mul(10)
                .and_then(|n| {
                    if negative {
                        n.checked_sub(digit)
                    } else {
                        n.checked_add(digit)
                    }
                })
                .ok_or_else(|| self.error(start, DecodeErrorKind::IntegerOverflow))?;
        }
        self.pos += end + 1;
        Ok(n)
    }

    /// `<length>:<bytes>`: the length must fit in what is left of the input,
    /// so a claim of gigabytes costs nothing.
    fn bytes(&mut self) -> Result<&'a [u8], DecodeError> {
        let start = self.pos;
        let mut length: u64 = 0;
        let mut digits = 0usize;
        loop {
            let b = self.peek()?;
            match b {
                b'0'..=b'9' => {
                    if digits == 1 && length == 0 {
                        return Err(self.error(start, DecodeErrorKind::BadLength));
                    }
                    length = length
                        .checked_mul(10)
                        .and_then(|l| l.checked_add(u64::from(b - b'0')))
                        .ok_or_else(|| self.error(start, DecodeErrorKind::BadLength))?;
                    digits += 1;
                    self.pos += 1;
                }
                b':' if digits > 0 => {
                    self.pos += 1;
                    break;
                }
                other => return Err(self.error(self.pos, DecodeErrorKind::UnexpectedByte(other))),
            }
        }
        let available = self.input.len() - self.pos;
        if length > available as u64 {
            return Err(self.error(
                start,
                DecodeErrorKind::LengthBeyondInput {
                    claimed: length,
                    available,
                },
            ));
        }
        let body = &self.input[self.pos..self.pos + length as usize];
        self.pos += length as usize;
        Ok(body)
    }

    fn list(&mut self, depth: usize) -> Result<Vec<Value<'a>>, DecodeError> {
        let depth = self.enter(depth)?;
        self.pos += 1; // 'l'
        let mut items = Vec::new();
        while self.peek()? != b'e' {
            items.push(self.value(depth)?);
        }
        self.pos += 1;
        Ok(items)
    }

    fn dict(&mut self, depth: usize) -> Result<Vec<(&'a [u8], Value<'a>)>, DecodeError> {
        let depth = self.enter(depth)?;
        let start = self.pos;
        self.pos += 1; // 'd'
        let mut entries: Vec<(&'a [u8], Value<'a>)> = Vec::new();
        let mut sorted = true;
        while self.peek()? != b'e' {
            if !self.peek()?.is_ascii_digit() {
                return Err(self.error(self.pos, DecodeErrorKind::KeyNotBytes));
            }
            let key_at = self.pos;
            let key = self.bytes()?;
            if let Some((last, _)) = entries.last() {
                if key == *last {
                    return Err(self.error(key_at, duplicate(key)));
                }
                sorted &= key > *last;
            }
            let value = self.value(depth)?;
            entries.push((key, value));
        }
        self.pos += 1;
        // Files in the wild sometimes have unsorted keys; accept them, but a
        // key that appears twice could mean different things to different
        // readers, so it is refused.
        if !sorted {
            let mut keys: Vec<&[u8]> = entries.iter().map(|(k, _)| *k).collect();
            keys.sort_unstable();
            if let Some(pair) = keys.windows(2).find(|pair| pair[0] == pair[1]) {
                return Err(self.error(start, duplicate(pair[0])));
            }
        }
        Ok(entries)
    }
}

fn duplicate(key: &[u8]) -> DecodeErrorKind {
    DecodeErrorKind::DuplicateKey(String::from_utf8_lossy(key).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(input: &[u8]) -> Value<'_> {
        decode(input, Limits::default()).unwrap()
    }

    fn err(input: &[u8]) -> DecodeError {
        decode(input, Limits::default()).unwrap_err()
    }

    #[test]
    fn integers() {
        assert_eq!(ok(b"i0e").as_int(), Some(0));
        assert_eq!(ok(b"i-42e").as_int(), Some(-42));
        assert_eq!(ok(b"i9223372036854775807e").as_int(), Some(i64::MAX));
        assert_eq!(ok(b"i-9223372036854775808e").as_int(), Some(i64::MIN));
        for bad in [&b"i-0e"[..], b"i03e", b"ie", b"i-e", b"i1x2e", b"i+1e"] {
            assert_eq!(err(bad).kind, DecodeErrorKind::BadInteger, "{bad:?}");
        }
        assert_eq!(
            err(b"i9223372036854775808e").kind,
            DecodeErrorKind::IntegerOverflow
        );
        assert_eq!(err(b"i12").kind, DecodeErrorKind::UnexpectedEnd);
    }

    #[test]
    fn byte_strings() {
        assert_eq!(ok(b"0:").as_bytes(), Some(&b""[..]));
        assert_eq!(ok(b"4:spam").as_str(), Some("spam"));
        assert_eq!(err(b"04:spam").kind, DecodeErrorKind::BadLength);
        assert_eq!(err(b"4spam").kind, DecodeErrorKind::UnexpectedByte(b's'));
        assert_eq!(err(b"5").kind, DecodeErrorKind::UnexpectedEnd);
    }

    #[test]
    fn huge_length_claims_cost_nothing() {
        let e = err(b"4294967296:abc");
        assert_eq!(
            e.kind,
            DecodeErrorKind::LengthBeyondInput {
                claimed: 4_294_967_296,
                available: 3
            }
        );
        assert_eq!(
            err(b"99999999999999999999999:").kind,
            DecodeErrorKind::BadLength
        );
    }

    #[test]
    fn spans_are_exact_even_for_unsorted_dicts() {
        let input = b"d4:infod1:bi1e1:ai2ee3:zzz0:e";
        let top = ok(input);
        let info = top.get("info").unwrap();
        assert_eq!(info.raw, b"d1:bi1e1:ai2ee");
        assert_eq!(info.span, 7..21);
        assert_eq!(info.get("a").unwrap().as_int(), Some(2));
        assert_eq!(top.get("zzz").unwrap().as_bytes(), Some(&b""[..]));
        assert!(top.get("missing").is_none());
    }

    #[test]
    fn duplicate_keys_are_refused_sorted_or_not() {
        assert!(
            matches!(err(b"d1:ai1e1:ai2ee").kind, DecodeErrorKind::DuplicateKey(k) if k == "a")
        );
        assert!(
            matches!(err(b"d1:bi1e1:ai1e1:bi2ee").kind, DecodeErrorKind::DuplicateKey(k) if k == "b")
        );
    }

    #[test]
    fn structural_errors_carry_offsets() {
        assert_eq!(
            err(b"di1ei2ee"),
            DecodeError {
                offset: 1,
                kind: DecodeErrorKind::KeyNotBytes
            }
        );
        assert_eq!(
            err(b"l1:a"),
            DecodeError {
                offset: 4,
                kind: DecodeErrorKind::UnexpectedEnd
            }
        );
        assert_eq!(
            err(b"i1ei2e"),
            DecodeError {
                offset: 3,
                kind: DecodeErrorKind::TrailingBytes(3)
            }
        );
        assert_eq!(err(b"x").kind, DecodeErrorKind::UnexpectedByte(b'x'));
        assert_eq!(err(b"").kind, DecodeErrorKind::UnexpectedEnd);
    }

    #[test]
    fn nesting_and_value_count_are_capped() {
        let deep: Vec<u8> = std::iter::repeat_n(b'l', 100_000)
            .chain(std::iter::repeat_n(b'e', 100_000))
            .collect();
        assert_eq!(err(&deep).kind, DecodeErrorKind::TooDeep(64));
        let limits = Limits {
            max_depth: 4,
            max_values: 3,
        };
        assert!(decode(b"li1ei2ee", limits).is_ok());
        let e = decode(b"li1ei2ei3ee", limits).unwrap_err();
        assert_eq!(e.kind, DecodeErrorKind::TooManyValues(3));
    }

    #[test]
    fn decode_prefix_reports_consumed_bytes() {
        let (value, used) = decode_prefix(b"3:abcREST", Limits::default()).unwrap();
        assert_eq!(value.as_bytes(), Some(&b"abc"[..]));
        assert_eq!(used, 5);
    }
}
