//! Interop with tungstenite, an independent implementation: what one side encodes the other
//! decodes, in both roles, at the frame-header level and at the message level.

use std::io::{Cursor, Read, Write};

use tungstenite::protocol::frame::coding::{CloseCode, OpCode as TOpCode};
use tungstenite::protocol::frame::{CloseFrame, Frame, FrameHeader as TFrameHeader};
use tungstenite::protocol::{Role as TRole, WebSocket};
use tungstenite::{Bytes, Message};

use super::decoder::tests::{decode, Ev};
use super::{encode_close, encode_frame, Decoder, FrameHeader, OpCode, Role};

/// An in-memory socket: reads come from `input`, writes (tungstenite's automatic pongs and close
/// replies, or the messages it sends) go to `output`.
struct Mock {
    input: Cursor<Vec<u8>>,
    output: Vec<u8>,
}

impl Mock {
    fn new(input: Vec<u8>) -> Self {
        Self {
            input: Cursor::new(input),
            output: Vec::new(),
        }
    }
}

impl Read for Mock {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.input.read(buf)
    }
}

impl Write for Mock {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.output.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn to_tungstenite_role(role: Role) -> TRole {
    match role {
        Role::Server => TRole::Server,
        Role::Client => TRole::Client,
    }
}

/// The mask our side would use when sending to a peer in `peer_role`.
fn mask_for(peer_role: Role, n: u8) -> Option<[u8; 4]> {
    (peer_role == Role::Server).then_some([n, 0x5A, n.wrapping_mul(7), 0xC3])
}

fn messages() -> Vec<(OpCode, Vec<u8>)> {
    vec![
        (
            OpCode::Text,
            b"[2,\"19223201\",\"BootNotification\",{\"chargePointVendor\":\"ACME\"}]".to_vec(),
        ),
        (OpCode::Text, "€".repeat(100).into_bytes()),
        (OpCode::Binary, vec![0xAB; 125]),
        (OpCode::Binary, vec![0xCD; 126]),
        (OpCode::Binary, (0..65_535u32).map(|i| i as u8).collect()),
        (
            OpCode::Binary,
            (0..70_000u32).map(|i| (i * 31) as u8).collect(),
        ),
        (OpCode::Text, Vec::new()),
        (OpCode::Ping, b"ping".to_vec()),
        (OpCode::Pong, b"pong".to_vec()),
    ]
}

#[test]
fn our_headers_parse_with_tungstenite() {
    for (i, (op, payload)) in messages().into_iter().enumerate() {
        for mask in [None, Some([1, 2, 3, i as u8])] {
            for fin in [true, false] {
                let fin = fin || op.is_control();
                let mut bytes = Vec::new();
                encode_frame(&mut bytes, op, &payload, fin, mask);
                let mut cursor = Cursor::new(&bytes);
                let (h, len) = TFrameHeader::parse(&mut cursor).unwrap().unwrap();
                assert_eq!(
                    (h.is_final, u8::from(h.opcode), h.mask, len),
                    (fin, op.as_u8(), mask, payload.len() as u64)
                );
                assert!(!h.rsv1 && !h.rsv2 && !h.rsv3);
                assert_eq!(cursor.position() as usize + payload.len(), bytes.len());
            }
        }
    }
}

#[test]
fn tungstenite_headers_parse_with_ours() {
    for len in [0u64, 1, 125, 126, 127, 65_535, 65_536, 1 << 32] {
        for mask in [None, Some([9, 8, 7, 6])] {
            for (op, fin) in [
                (TOpCode::from(1), true),
                (TOpCode::from(0), false),
                (TOpCode::from(2), true),
            ] {
                let header = TFrameHeader {
                    is_final: fin,
                    opcode: op,
                    mask,
                    ..TFrameHeader::default()
                };
                let mut bytes = Vec::new();
                header.format(len, &mut bytes).unwrap();
                let (ours, n) = FrameHeader::parse(&bytes).unwrap().unwrap();
                assert_eq!(
                    (ours.fin, ours.opcode.as_u8(), ours.mask, ours.payload_len),
                    (fin, u8::from(op), mask, len)
                );
                assert_eq!(n, bytes.len());
            }
        }
    }
}

/// Our encoder, tungstenite's WebSocket decoding (which enforces the masking rule of `peer_role`).
#[test]
fn tungstenite_reads_our_messages() {
    for peer_role in [Role::Server, Role::Client] {
        let mut bytes = Vec::new();
        let msgs = messages();
        for (i, (op, payload)) in msgs.iter().enumerate() {
            if payload.len() > 1000 && !op.is_control() {
                // Large ones fragmented in three, one of them empty.
                let (a, b) = payload.split_at(payload.len() / 2);
                encode_frame(&mut bytes, *op, a, false, mask_for(peer_role, i as u8));
                encode_frame(
                    &mut bytes,
                    OpCode::Continuation,
                    &[],
                    false,
                    mask_for(peer_role, 100),
                );
                encode_frame(
                    &mut bytes,
                    OpCode::Continuation,
                    b,
                    true,
                    mask_for(peer_role, 101),
                );
            } else {
                encode_frame(&mut bytes, *op, payload, true, mask_for(peer_role, i as u8));
            }
        }
        encode_close(&mut bytes, 4001, "bye", mask_for(peer_role, 0));
        let mut ws =
            WebSocket::from_raw_socket(Mock::new(bytes), to_tungstenite_role(peer_role), None);
        for (op, payload) in msgs {
            let got = ws.read().unwrap();
            let want = match op {
                OpCode::Text => Message::text(String::from_utf8(payload).unwrap()),
                OpCode::Binary => Message::Binary(payload.into()),
                OpCode::Ping => Message::Ping(payload.into()),
                OpCode::Pong => Message::Pong(payload.into()),
                _ => unreachable!(),
            };
            assert_eq!(got, want, "{peer_role:?}");
        }
        let Message::Close(Some(close)) = ws.read().unwrap() else {
            panic!("no close")
        };
        assert_eq!(
            (u16::from(close.code), close.reason.as_str()),
            (4001, "bye")
        );
    }
}

/// tungstenite's WebSocket encoding (random masks when it is the client), our decoding.
#[test]
fn we_read_tungstenite_messages() {
    for our_role in [Role::Server, Role::Client] {
        let peer = match our_role {
            Role::Server => TRole::Client,
            Role::Client => TRole::Server,
        };
        let mut ws = WebSocket::from_raw_socket(Mock::new(Vec::new()), peer, None);
        let mut expected = Vec::new();
        for (op, payload) in messages() {
            let (msg, ev) = match op {
                OpCode::Text => {
                    let s = String::from_utf8(payload).unwrap();
                    (Message::text(s.clone()), Ev::Text(s))
                }
                OpCode::Binary => (Message::Binary(payload.clone().into()), Ev::Binary(payload)),
                OpCode::Ping => (Message::Ping(payload.clone().into()), Ev::Ping(payload)),
                OpCode::Pong => (Message::Pong(payload.clone().into()), Ev::Pong(payload)),
                _ => unreachable!(),
            };
            ws.send(msg).unwrap();
            expected.push(ev);
        }
        ws.close(Some(CloseFrame {
            code: CloseCode::from(1000),
            reason: "done".into(),
        }))
        .unwrap();
        ws.flush().unwrap();
        expected.push(Ev::Close(Some(1000), "done".into()));
        let bytes = std::mem::take(&mut ws.get_mut().output);
        let mut dec = Decoder::new(our_role, 1 << 20);
        assert_eq!(decode(&mut dec, &bytes).unwrap(), expected, "{our_role:?}");
        assert_eq!(dec.heap_bytes(), 0);
    }
}

/// Fragments built with tungstenite's `Frame` API (explicit masks), a ping between; we decode.
#[test]
fn we_read_tungstenite_fragments() {
    let mut bytes = Vec::new();
    let mut push = |mut frame: Frame, key: [u8; 4]| {
        frame.header_mut().mask = Some(key);
        frame.format(&mut bytes).unwrap();
    };
    push(
        Frame::message(
            Bytes::from_static("pré".as_bytes()),
            TOpCode::from(1),
            false,
        ),
        [1, 2, 3, 4],
    );
    push(Frame::ping(Bytes::from_static(b"?")), [5, 6, 7, 8]);
    push(
        Frame::message(
            Bytes::from_static("fixe".as_bytes()),
            TOpCode::from(0),
            true,
        ),
        [9, 10, 11, 12],
    );
    let mut dec = Decoder::new(Role::Server, 100);
    assert_eq!(
        decode(&mut dec, &bytes).unwrap(),
        [Ev::Ping(b"?".to_vec()), Ev::Text("préfixe".into())]
    );
}
