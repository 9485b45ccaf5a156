//! Property tests: whatever a client sends, however the network cuts it, the server decodes the
//! same messages and ends idle with no heap memory.

use proptest::prelude::*;

use super::decoder::tests::{decode, Ev};
use super::{encode_close, encode_frame, Decoder, OpCode, Role};

/// Messages with a 64-bit length need > 64 KiB, so sizes go a bit beyond.
const MAX_SIZE: usize = 70_000;

#[derive(Debug, Clone)]
enum Kind {
    Text,
    Binary,
    Ping,
}

#[derive(Debug, Clone)]
struct Spec {
    kind: Kind,
    len: usize,
    seed: u64,
    /// Fragment boundaries, as positions in the payload (sorted; repeats give empty fragments).
    cuts: Vec<prop::sample::Index>,
    ping_between_fragments: bool,
}

fn spec() -> impl Strategy<Value = Spec> {
    let kind = prop_oneof![Just(Kind::Text), Just(Kind::Binary), Just(Kind::Ping)];
    // Mostly OCPP-sized messages, sometimes large ones.
    let len = prop_oneof![4 => 0usize..300, 1 => 0usize..MAX_SIZE];
    (
        kind,
        len,
        any::<u64>(),
        prop::collection::vec(any::<prop::sample::Index>(), 0..4),
        any::<bool>(),
    )
        .prop_map(|(kind, len, seed, cuts, ping_between_fragments)| Spec {
            kind,
            len,
            seed,
            cuts,
            ping_between_fragments,
        })
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*: deterministic payloads from the proptest seed, much faster than proptest
        // collections of 70k elements.
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

/// Text mixing 1- to 4-byte characters, so fragments and reads split characters.
fn text(len: usize, rng: &mut Rng) -> String {
    const CHARS: [char; 8] = ['a', '{', '"', ' ', 'é', '€', '中', '𝄞'];
    let mut s = String::with_capacity(len + 4);
    while s.len() < len {
        s.push(CHARS[(rng.next() % CHARS.len() as u64) as usize]);
    }
    s
}

/// Encode `specs` as a client would (every frame masked): the bytes, and the events to expect.
fn encode(specs: &[Spec]) -> (Vec<u8>, Vec<Ev>) {
    let mut out = Vec::new();
    let mut expected = Vec::new();
    for s in specs {
        let mut rng = Rng(s.seed | 1);
        // A different key for each frame, as a real client draws one per frame.
        let mut frame_no = 0u64;
        let mut mask = || {
            frame_no += 1;
            Some(rng_mask(s.seed ^ frame_no).to_be_bytes())
        };
        let (op, payload, event) = match s.kind {
            Kind::Ping => {
                let p: Vec<u8> = (0..s.len.min(125))
                    .map(|i| (s.seed >> (i % 8)) as u8)
                    .collect();
                encode_frame(&mut out, OpCode::Ping, &p, true, mask());
                expected.push(Ev::Ping(p));
                continue;
            }
            Kind::Text => {
                let t = text(s.len, &mut rng);
                (OpCode::Text, t.clone().into_bytes(), Ev::Text(t))
            }
            Kind::Binary => {
                let b: Vec<u8> = (0..s.len).map(|_| rng.next() as u8).collect();
                (OpCode::Binary, b.clone(), Ev::Binary(b))
            }
        };
        let mut cuts: Vec<usize> = s.cuts.iter().map(|i| i.index(payload.len() + 1)).collect();
        cuts.sort_unstable();
        cuts.push(payload.len());
        let mut start = 0;
        for (i, &end) in cuts.iter().enumerate() {
            let fin = i == cuts.len() - 1;
            let frame_op = if i == 0 { op } else { OpCode::Continuation };
            encode_frame(&mut out, frame_op, &payload[start..end], fin, mask());
            if !fin && s.ping_between_fragments {
                encode_frame(&mut out, OpCode::Ping, b"between", true, mask());
                expected.push(Ev::Ping(b"between".to_vec()));
            }
            start = end;
        }
        expected.push(event);
    }
    (out, expected)
}

fn rng_mask(seed: u64) -> u32 {
    (seed.rotate_left(17) ^ 0x9E37_79B9) as u32
}

/// Feed `bytes` to a fresh server decoder cut into pieces of the given sizes (cycled).
fn feed_in_pieces(bytes: &[u8], sizes: &[usize]) -> Result<Vec<Ev>, super::ProtocolError> {
    let mut dec = Decoder::new(Role::Server, 1 << 20);
    let mut events = Vec::new();
    let mut rest = bytes;
    for size in sizes.iter().cycle() {
        if rest.is_empty() {
            break;
        }
        let (piece, tail) = rest.split_at((*size).min(rest.len()));
        events.extend(decode(&mut dec, piece)?);
        rest = tail;
    }
    assert_eq!(
        (dec.buffered_bytes(), dec.heap_bytes()),
        (0, 0),
        "idle decoder holds memory"
    );
    Ok(events)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn any_messages_any_cuts(
        specs in prop::collection::vec(spec(), 0..8),
        sizes in prop::collection::vec(
            prop_oneof![1usize..16, 1usize..2_000, 1usize..100_000],
            1..20,
        ),
    ) {
        let (bytes, expected) = encode(&specs);
        prop_assert_eq!(feed_in_pieces(&bytes, &sizes).unwrap(), expected);
    }
}

/// A small stream that still covers each length encoding (the 64-bit one non-minimal, to stay
/// small), fragments, an interleaved ping, a character split between fragments, and a close.
fn fixed_stream() -> (Vec<u8>, Vec<Ev>) {
    let key = Some([0xA1, 0xB2, 0xC3, 0xD4]);
    let mut out = Vec::new();
    encode_frame(
        &mut out,
        OpCode::Text,
        b"[2,\"1\",\"Heartbeat\",{}]",
        true,
        key,
    );
    encode_frame(
        &mut out,
        OpCode::Text,
        "h€".as_bytes()[..2].as_ref(),
        false,
        key,
    );
    encode_frame(&mut out, OpCode::Ping, b"ka", true, key);
    encode_frame(
        &mut out,
        OpCode::Continuation,
        &"h€llo".as_bytes()[2..],
        true,
        key,
    );
    encode_frame(&mut out, OpCode::Binary, &[5; 300], true, key);
    // 64-bit length for a 7-byte payload.
    out.extend_from_slice(&[0x82, 0xFF, 0, 0, 0, 0, 0, 0, 0, 7, 0, 0, 0, 0]);
    out.extend_from_slice(&[9; 7]);
    encode_frame(&mut out, OpCode::Pong, b"", true, key);
    encode_close(&mut out, 1001, "going away", key);
    let expected = vec![
        Ev::Text("[2,\"1\",\"Heartbeat\",{}]".into()),
        Ev::Ping(b"ka".to_vec()),
        Ev::Text("h€llo".into()),
        Ev::Binary(vec![5; 300]),
        Ev::Binary(vec![9; 7]),
        Ev::Pong(vec![]),
        Ev::Close(Some(1001), "going away".into()),
    ];
    (out, expected)
}

#[test]
fn every_single_split_point() {
    let (bytes, expected) = fixed_stream();
    for cut in 0..=bytes.len() {
        let mut dec = Decoder::new(Role::Server, 1 << 20);
        let mut events = decode(&mut dec, &bytes[..cut]).unwrap();
        events.extend(decode(&mut dec, &bytes[cut..]).unwrap());
        assert_eq!(events, expected, "cut at {cut}");
        assert_eq!(dec.heap_bytes(), 0);
    }
}

#[test]
fn one_byte_at_a_time() {
    let (bytes, expected) = fixed_stream();
    assert_eq!(feed_in_pieces(&bytes, &[1]).unwrap(), expected);
}
