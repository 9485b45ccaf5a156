//! Every protocol error the decoder can produce, reached by a test, and the properties all errors
//! share: reported as early as the bytes allow, sticky, and leaving no buffer behind.

use super::decoder::tests::{decode, Ev};
use super::{encode_frame, Decoder, OpCode, ProtocolError, Role};

const KEY: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

#[test]
fn every_error_is_reachable_and_sticky() {
    let masked = |op: OpCode, payload: &[u8], fin: bool| {
        let mut v = Vec::new();
        encode_frame(&mut v, op, payload, fin, Some(KEY));
        v
    };
    let text_start = masked(OpCode::Text, b"x", false);
    let cases: Vec<(Role, Vec<u8>, ProtocolError)> = vec![
        (Role::Server, vec![0xC1], ProtocolError::RESERVED_BITS),
        (Role::Server, vec![0x83], ProtocolError::UNKNOWN_OPCODE),
        (
            Role::Server,
            vec![0x81, 0x01, b'x'],
            ProtocolError::UNMASKED_FROM_CLIENT,
        ),
        (
            Role::Client,
            masked(OpCode::Text, b"x", true),
            ProtocolError::MASKED_FROM_SERVER,
        ),
        (
            Role::Server,
            vec![0x89, 0xFE],
            ProtocolError::CONTROL_TOO_LONG,
        ),
        (Role::Server, vec![0x0A], ProtocolError::CONTROL_FRAGMENTED),
        (
            Role::Server,
            vec![0x82, 0xFF, 0x80],
            ProtocolError::LENGTH_OVERFLOW,
        ),
        (
            Role::Server,
            masked(OpCode::Continuation, b"x", true),
            ProtocolError::UNEXPECTED_CONTINUATION,
        ),
        (
            Role::Server,
            [text_start.clone(), masked(OpCode::Binary, b"y", true)].concat(),
            ProtocolError::EXPECTED_CONTINUATION,
        ),
        (
            Role::Server,
            [text_start.clone(), masked(OpCode::Text, b"y", true)].concat(),
            ProtocolError::EXPECTED_CONTINUATION,
        ),
        (
            Role::Server,
            masked(OpCode::Close, &[3], true),
            ProtocolError::CLOSE_PAYLOAD_ONE_BYTE,
        ),
        (
            Role::Server,
            masked(OpCode::Close, &[0x03, 0xED], true),
            ProtocolError::INVALID_CLOSE_CODE,
        ),
        (
            Role::Server,
            masked(OpCode::Text, b"\xC3", true),
            ProtocolError::INVALID_UTF8,
        ),
        // Valid bytes split inside a character are fine; an invalid whole is not.
        (
            Role::Server,
            [
                masked(OpCode::Text, b"\xE2\x82", false),
                masked(OpCode::Continuation, b"\x28", true),
            ]
            .concat(),
            ProtocolError::INVALID_UTF8,
        ),
        (
            Role::Server,
            masked(OpCode::Close, b"\x03\xE8\xFF", true),
            ProtocolError::INVALID_UTF8_CLOSE_REASON,
        ),
        (
            Role::Server,
            masked(OpCode::Binary, &[0; 11], true),
            ProtocolError::MESSAGE_TOO_BIG,
        ),
        (
            Role::Server,
            [
                masked(OpCode::Binary, &[0; 6], false),
                masked(OpCode::Continuation, &[0; 5], true),
            ]
            .concat(),
            ProtocolError::MESSAGE_TOO_BIG,
        ),
    ];
    let mut reached = Vec::new();
    for (role, bytes, expected) in cases {
        let mut dec = Decoder::new(role, 10);
        assert_eq!(decode(&mut dec, &bytes), Err(expected), "{bytes:02x?}");
        assert_eq!(dec.heap_bytes(), 0);
        // Dead for good, even on valid input.
        assert_eq!(
            decode(&mut dec, &masked(OpCode::Ping, b"", true)),
            Err(expected)
        );
        reached.push(expected);
    }
    for e in ProtocolError::ALL {
        assert!(reached.contains(&e), "no test reaches {e}");
    }
}

#[test]
fn too_big_is_detected_from_the_header_alone() {
    // 2 MiB announced, limit 1 MiB: the 14-byte header is enough, nothing is buffered first.
    let header = [0x82, 0xFF, 0, 0, 0, 0, 0, 0x20, 0, 0, 1, 2, 3, 4];
    let mut dec = Decoder::new(Role::Server, 1 << 20);
    assert_eq!(
        decode(&mut dec, &header),
        Err(ProtocolError::MESSAGE_TOO_BIG)
    );
    // Same when the header itself arrives in pieces.
    let mut dec = Decoder::new(Role::Server, 1 << 20);
    assert_eq!(decode(&mut dec, &header[..5]), Ok(vec![]));
    assert_eq!(
        decode(&mut dec, &header[5..]),
        Err(ProtocolError::MESSAGE_TOO_BIG)
    );
    // A fragmented message: fails at the header of the fragment that crosses the limit.
    let mut bytes = Vec::new();
    encode_frame(&mut bytes, OpCode::Text, &[b'a'; 600_000], false, Some(KEY));
    bytes.extend_from_slice(&[0x80, 0xFF, 0, 0, 0, 0, 0, 0x08, 0, 0, 1, 2, 3, 4]);
    let mut dec = Decoder::new(Role::Server, 1 << 20);
    assert_eq!(
        decode(&mut dec, &bytes),
        Err(ProtocolError::MESSAGE_TOO_BIG)
    );
    // Exactly at the limit is fine.
    let mut ok = Vec::new();
    encode_frame(&mut ok, OpCode::Binary, &[7; 10], true, Some(KEY));
    assert_eq!(
        decode(&mut Decoder::new(Role::Server, 10), &ok),
        Ok(vec![Ev::Binary(vec![7; 10])])
    );
}

#[test]
fn errors_in_a_buffered_header_surface_when_it_completes() {
    // Header cut after the first byte: the checks that need the second byte run when it arrives.
    let mut dec = Decoder::new(Role::Server, 100);
    assert_eq!(decode(&mut dec, &[0x89]), Ok(vec![]));
    assert_eq!(
        decode(&mut dec, &[0xFE, 0, 0]),
        Err(ProtocolError::CONTROL_TOO_LONG)
    );
    let mut dec = Decoder::new(Role::Server, 100);
    assert_eq!(decode(&mut dec, &[0x81]), Ok(vec![]));
    assert_eq!(
        decode(&mut dec, &[0x01, b'x']),
        Err(ProtocolError::UNMASKED_FROM_CLIENT)
    );
}
