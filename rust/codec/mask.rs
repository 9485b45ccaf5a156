//! The XOR masking of RFC 6455 §5.3, the hottest loop of the codec.
//!
//! Every byte a charger sends passes through here once, so the fast path XORs eight bytes at a
//! time; the scalar loop handles the tail and is the reference the fast path is tested against.

/// XOR `buf` with `mask`, where `buf` starts `offset` bytes into the frame's payload (masking is
/// periodic in 4, so a payload can be unmasked in pieces). Applying it twice restores the input.
#[inline]
pub fn apply_mask(buf: &mut [u8], mask: [u8; 4], offset: usize) {
    // Rotate the key so that index 0 of `buf` uses the right key byte; after that every 8-byte word
    // sees the same key word, whatever the alignment of `buf`.
    let r = offset & 3;
    let key = [
        mask[r],
        mask[(r + 1) & 3],
        mask[(r + 2) & 3],
        mask[(r + 3) & 3],
    ];
    apply_mask_fast(buf, key);
}

/// Word-at-a-time XOR. `chunks_exact_mut` plus `from_ne_bytes` compiles to unaligned 64-bit loads
/// and stores (and is vectorised by LLVM), with no `unsafe`; the key word is built in native byte
/// order from the same byte sequence, so the result does not depend on endianness.
#[inline]
fn apply_mask_fast(buf: &mut [u8], key: [u8; 4]) {
    let word = u64::from_ne_bytes([
        key[0], key[1], key[2], key[3], key[0], key[1], key[2], key[3],
    ]);
    let mut chunks = buf.chunks_exact_mut(8);
    for chunk in &mut chunks {
        let v = u64::from_ne_bytes((&*chunk).try_into().expect("chunk of 8")) ^ word;
        chunk.copy_from_slice(&v.to_ne_bytes());
    }
    // The remainder starts at a multiple of 8 bytes, hence at key phase 0.
    apply_mask_scalar(chunks.into_remainder(), key, 0);
}

/// Byte-at-a-time reference implementation (also the tail of the fast path).
#[inline]
pub(crate) fn apply_mask_scalar(buf: &mut [u8], mask: [u8; 4], offset: usize) {
    for (i, b) in buf.iter_mut().enumerate() {
        *b ^= mask[(offset + i) & 3];
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn rfc_example_mask() {
        // RFC 6455 §5.7: "Hello" masked with 37 fa 21 3d.
        let mut buf = *b"Hello";
        apply_mask(&mut buf, [0x37, 0xfa, 0x21, 0x3d], 0);
        assert_eq!(buf, [0x7f, 0x9f, 0x4d, 0x51, 0x58]);
    }

    #[test]
    fn pieces_equal_whole() {
        let mask = [1, 2, 3, 4];
        let data: Vec<u8> = (0..=255).collect();
        let mut whole = data.clone();
        apply_mask(&mut whole, mask, 0);
        for cut in 0..data.len() {
            let mut pieces = data.clone();
            let (a, b) = pieces.split_at_mut(cut);
            apply_mask(a, mask, 0);
            apply_mask(b, mask, cut);
            assert_eq!(pieces, whole, "cut at {cut}");
        }
    }

    proptest! {
        #[test]
        fn fast_path_matches_scalar(
            data in prop::collection::vec(any::<u8>(), 0..300),
            mask in any::<[u8; 4]>(),
            offset in 0usize..64,
            start in 0usize..8,
        ) {
            // `start` shifts the slice inside the allocation so unaligned heads are covered.
            let start = start.min(data.len());
            let mut fast = data.clone();
            let mut slow = data.clone();
            apply_mask(&mut fast[start..], mask, offset);
            apply_mask_scalar(&mut slow[start..], mask, offset);
            prop_assert_eq!(fast, slow);
        }
    }
}
