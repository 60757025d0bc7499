//! An adaptive binary range coder for bytes (the one of LZMA: 11-bit probabilities that move a
//! thirty-second of the way to each bit seen, a byte coded as 8 bits down a binary tree).
//!
//! Patches code their body with it (docs/FORMAT.md, *Patches*, coded body): a literal byte is
//! XORed with the base byte it replaces, so the unchanged high bytes of a float that moved a
//! little become zeros, and each of [`CONTEXTS`] models learns the distribution of its own kind
//! of byte (a literal replaced or inserted, by position modulo 4 in the result; an operation's
//! first byte after each kind of operation, its further varint bytes, its other fields). The
//! decoder is `no_std` and heap-free: its state is [`ByteModels`] (7 KiB) and two words; it
//! reads untrusted bytes and never panics (reading past the end of its input is an error, and
//! any input decodes to *some* bytes, which the patch's checks and result hash then judge).
//!
//! ```
//! use pocketrec::range_coder::{literal_context, ByteModels, Decoder, Encoder};
//! let bytes = [0u8, 0, 0, 7, 0, 0, 0, 9];
//! let (mut models, mut encoder) = (ByteModels::default(), Encoder::default());
//! for (i, &b) in bytes.iter().enumerate() {
//!     encoder.byte(&mut models, literal_context(true, i as u64), b);
//! }
//! let coded = encoder.finish();
//! let mut models = ByteModels::default();
//! let mut decoder = Decoder::new(&coded).unwrap();
//! for (i, &b) in bytes.iter().enumerate() {
//!     assert_eq!(decoder.byte(&mut models, literal_context(true, i as u64)), Some(b));
//! }
//! ```

/// Models per coder: literals (2 kinds: replaced and XORed with the base, or inserted; × 4
/// positions), an operation's first byte (× 4 tags of the operation before it), the rest of its
/// first varint, its other fields.
pub const CONTEXTS: usize = 14;

const PROBABILITY_BITS: u32 = 11;
const PROBABILITY_ONE: u16 = 1 << PROBABILITY_BITS;
const ADAPTATION_SHIFT: u32 = 5;
const TOP: u32 = 1 << 24;

/// The adaptive models of a coder: for each context, 255 bit probabilities of a binary tree
/// over the byte's 8 bits (index 0 unused), all starting at one half.
#[derive(Clone, Debug)]
pub struct ByteModels {
    probabilities: [[u16; 256]; CONTEXTS],
}

impl Default for ByteModels {
    fn default() -> Self {
        ByteModels {
            probabilities: [[PROBABILITY_ONE / 2; 256]; CONTEXTS],
        }
    }
}

/// The context of a literal byte: whether it replaces a base byte (and is coded XORed with
/// it), and its position in the result modulo 4 (the lanes of f32, f16 and int8 values).
pub fn literal_context(replaces: bool, result_offset: u64) -> usize {
    usize::from(replaces) * 4 + (result_offset % 4) as usize
}

/// The context of a byte of an operation's first varint: its first byte, after an operation
/// of tag `Some(previous)` (0 to 3; 0 before the first operation), or a later byte (`None`).
pub fn header_context(previous: Option<u8>) -> usize {
    match previous {
        Some(tag) => 8 + usize::from(tag & 3),
        None => 12,
    }
}

/// The context of the bytes of an operation's other fields (a seek's distance, a copy-add's
/// count, width and delta, a nibble copy's length).
pub fn field_context() -> usize {
    13
}

/// Decodes bytes from a coded stream (untrusted).
#[derive(Clone, Debug)]
pub struct Decoder<'a> {
    input: &'a [u8],
    position: usize,
    range: u32,
    code: u32,
}

impl<'a> Decoder<'a> {
    /// Starts decoding `input`; `None` if it is shorter than the coder's 5 first bytes.
    pub fn new(input: &'a [u8]) -> Option<Decoder<'a>> {
        let start = input.get(..5)?;
        let code = start
            .iter()
            .fold(0u32, |code, &byte| (code << 8) | u32::from(byte));
        Some(Decoder {
            input,
            position: 5,
            range: u32::MAX,
            code,
        })
    }

    /// The next byte, coded in context `context` (`< CONTEXTS`); `None` when the input ends
    /// before it.
    pub fn byte(&mut self, models: &mut ByteModels, context: usize) -> Option<u8> {
        let tree = models.probabilities.get_mut(context)?;
        let mut node = 1usize;
        while node < 256 {
            let probability = &mut tree[node];
            let bound = (self.range >> PROBABILITY_BITS) * u32::from(*probability);
            let bit = if self.code < bound {
                self.range = bound;
                *probability += (PROBABILITY_ONE - *probability) >> ADAPTATION_SHIFT;
                0
            } else {
                self.range -= bound;
                self.code -= bound;
                *probability -= *probability >> ADAPTATION_SHIFT;
                1
            };
            if self.range < TOP {
                let next = *self.input.get(self.position)?;
                self.position += 1;
                self.range <<= 8;
                self.code = (self.code << 8) | u32::from(next);
            }
            node = 2 * node + bit;
        }
        Some((node - 256) as u8)
    }
}

/// Codes bytes (the writer's side of [`Decoder`]).
#[cfg(feature = "alloc")]
#[derive(Clone, Debug)]
pub struct Encoder {
    out: alloc::vec::Vec<u8>,
    low: u64,
    range: u32,
    cache: u8,
    cache_size: u64,
}

#[cfg(feature = "alloc")]
impl Default for Encoder {
    fn default() -> Self {
        Encoder {
            out: alloc::vec::Vec::new(),
            low: 0,
            range: u32::MAX,
            cache: 0,
            cache_size: 1,
        }
    }
}

#[cfg(feature = "alloc")]
impl Encoder {
    /// Codes `byte` in context `context` (`< CONTEXTS`).
    pub fn byte(&mut self, models: &mut ByteModels, context: usize, byte: u8) {
        let tree = &mut models.probabilities[context];
        let mut node = 1usize;
        for shift in (0..8).rev() {
            let bit = (byte >> shift) & 1;
            let probability = &mut tree[node];
            let bound = (self.range >> PROBABILITY_BITS) * u32::from(*probability);
            if bit == 0 {
                self.range = bound;
                *probability += (PROBABILITY_ONE - *probability) >> ADAPTATION_SHIFT;
            } else {
                self.low += u64::from(bound);
                self.range -= bound;
                *probability -= *probability >> ADAPTATION_SHIFT;
            }
            while self.range < TOP {
                self.range <<= 8;
                self.shift_low();
            }
            node = 2 * node + usize::from(bit);
        }
    }

    fn shift_low(&mut self) {
        if (self.low as u32) < 0xFF00_0000 || (self.low >> 32) != 0 {
            let carry = (self.low >> 32) as u8;
            let mut pending = self.cache;
            loop {
                self.out.push(pending.wrapping_add(carry));
                pending = 0xFF;
                self.cache_size -= 1;
                if self.cache_size == 0 {
                    break;
                }
            }
            self.cache = (self.low >> 24) as u8;
        }
        self.cache_size += 1;
        self.low = (self.low & 0x00FF_FFFF) << 8;
    }

    /// Ends the stream and returns its bytes.
    pub fn finish(mut self) -> alloc::vec::Vec<u8> {
        for _ in 0..5 {
            self.shift_low();
        }
        self.out
    }
}

#[cfg(all(test, feature = "alloc"))]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    #[test]
    fn bytes_round_trip_in_every_context() {
        let bytes: Vec<u8> = (0..20_000u32)
            .map(|i| match i % 3 {
                0 => 0,
                1 => (i.wrapping_mul(2_654_435_761) >> 24) as u8,
                _ => (i % 7) as u8,
            })
            .collect();
        let mut models = ByteModels::default();
        let mut encoder = Encoder::default();
        // Each kind of byte in its own context (a third of them in each of contexts 0, 1, 2),
        // then the same bytes spread over all contexts.
        for (i, &b) in bytes.iter().enumerate() {
            encoder.byte(&mut models, i % 3, b);
        }
        for (i, &b) in bytes.iter().enumerate() {
            encoder.byte(&mut models, i % CONTEXTS, b);
        }
        let coded = encoder.finish();
        // Zeros cost next to nothing, 7 values about 2.8 bits, random bytes 8: the first pass
        // is about 45 % of its bytes; spread over the contexts, the kinds mix (about 70 %).
        assert!(
            coded.len() < bytes.len() * 2 * 60 / 100,
            "{} bytes",
            coded.len()
        );
        let mut models = ByteModels::default();
        let mut decoder = Decoder::new(&coded).unwrap();
        for (i, &b) in bytes.iter().enumerate() {
            assert_eq!(decoder.byte(&mut models, i % 3), Some(b), "byte {i}");
        }
        for (i, &b) in bytes.iter().enumerate() {
            assert_eq!(decoder.byte(&mut models, i % CONTEXTS), Some(b), "byte {i}");
        }
    }

    #[test]
    fn cut_or_garbage_input_is_an_end_or_some_bytes_never_a_panic() {
        assert!(Decoder::new(&[0; 4]).is_none());
        let mut models = ByteModels::default();
        let mut decoder = Decoder::new(&[0xFF; 5]).unwrap();
        let mut ended = false;
        for _ in 0..100 {
            if decoder.byte(&mut models, 3).is_none() {
                ended = true;
                break;
            }
        }
        assert!(ended, "5 bytes cannot hold 100 bytes of 0xFF-coded data");
        let garbage: Vec<u8> = (0..4_096u32).map(|i| (i * 97 + 13) as u8).collect();
        let mut models = ByteModels::default();
        let mut decoder = Decoder::new(&garbage).unwrap();
        while decoder.byte(&mut models, 5).is_some() {}
        assert!(decoder.byte(&mut models, CONTEXTS).is_none());
    }
}
