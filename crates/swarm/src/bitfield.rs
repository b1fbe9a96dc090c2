//! A set of piece indices, in the wire's bit order (BEP 3: the high bit of
//! the first byte is piece 0), with its population kept count of.

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bitfield {
    bytes: Vec<u8>,
    len: u32,
    ones: u32,
}

impl Bitfield {
    pub fn new(len: u32) -> Bitfield {
        Bitfield {
            bytes: vec![0; (len as usize).div_ceil(8)],
            len,
            ones: 0,
        }
    }

    pub fn full(len: u32) -> Bitfield {
        let mut all = Bitfield::new(len);
        for i in 0..len {
            all.set(i);
        }
        all
    }

    /// From wire bytes; `None` if the length is wrong or spare bits are set
    /// (the codec checks this too when it knows the piece count).
    pub fn from_bytes(bytes: &[u8], len: u32) -> Option<Bitfield> {
        if bytes.len() != (len as usize).div_ceil(8) {
            return None;
        }
        let spare = (bytes.len() * 8) as u32 - len;
        if spare > 0 && bytes.last().is_some_and(|&b| b & ((1u8 << spare) - 1) != 0) {
            return None;
        }
        let ones = bytes.iter().map(|b| b.count_ones()).sum();
        Some(Bitfield {
            bytes: bytes.to_vec(),
            len,
            ones,
        })
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    pub fn len(&self) -> u32 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn count(&self) -> u32 {
        self.ones
    }

    pub fn is_full(&self) -> bool {
        self.ones == self.len
    }

    pub fn get(&self, index: u32) -> bool {
        index < self.len && self.bytes[(index / 8) as usize] & (0x80 >> (index % 8)) != 0
    }

    /// Sets a bit; returns whether it was newly set.
    pub fn set(&mut self, index: u32) -> bool {
        if index >= self.len || self.get(index) {
            return false;
        }
        self.bytes[(index / 8) as usize] |= 0x80 >> (index % 8);
        self.ones += 1;
        true
    }

    /// Clears a bit; returns whether it was set.
    pub fn clear(&mut self, index: u32) -> bool {
        if !self.get(index) {
            return false;
        }
        self.bytes[(index / 8) as usize] &= !(0x80 >> (index % 8));
        self.ones -= 1;
        true
    }

    pub fn ones(&self) -> impl Iterator<Item = u32> + '_ {
        (0..self.len).filter(|&i| self.get(i))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_bit_order_and_counts() {
        let mut bits = Bitfield::new(10);
        assert!(bits.set(0));
        assert!(bits.set(9));
        assert!(!bits.set(9));
        assert!(!bits.set(10), "out of range is ignored");
        assert_eq!(bits.as_bytes(), &[0x80, 0x40]);
        assert_eq!(bits.count(), 2);
        assert!(bits.clear(0));
        assert_eq!(bits.ones().collect::<Vec<_>>(), vec![9]);
        assert!(Bitfield::full(10).is_full());
    }

    #[test]
    fn from_bytes_checks_length_and_spare_bits() {
        assert_eq!(
            Bitfield::from_bytes(&[0xff, 0xc0], 10).map(|b| b.count()),
            Some(10)
        );
        assert!(
            Bitfield::from_bytes(&[0xff, 0xe0], 10).is_none(),
            "spare bit set"
        );
        assert!(Bitfield::from_bytes(&[0xff], 10).is_none(), "too short");
    }
}
