//! The seed corpus, as committed under bench/fuzz/corpus/: regenerate with
//! `cargo bench --profile fuzz --bench fuzz_codec -- --write-corpus bench/fuzz/corpus`
//! (files named `regress-*` are crash regressions, written by hand, and are never overwritten).

use std::path::Path;

use ampgate_native::codec::{client_request, encode_close, encode_frame, key_from_nonce, OpCode};

const KEY: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];
const HEARTBEAT: &[u8] = br#"[2,"19223201","Heartbeat",{}]"#;

fn frame(op: OpCode, payload: &[u8], fin: bool, masked: bool) -> Vec<u8> {
    let mut out = Vec::new();
    encode_frame(&mut out, op, payload, fin, masked.then_some(KEY));
    out
}

/// A header announcing `len` bytes in 64 bits, with only `have` payload bytes after it.
fn header64(op: u8, len: u64, masked: bool, have: usize) -> Vec<u8> {
    let mut out = vec![0x80 | op, if masked { 0xFF } else { 0x7F }];
    out.extend_from_slice(&len.to_be_bytes());
    if masked {
        out.extend_from_slice(&KEY);
    }
    out.extend(std::iter::repeat_n(b'a', have));
    out
}

/// Frame streams a decoder of either role may receive (`masked`: the client-to-server side).
fn frames(masked: bool) -> Vec<(String, Vec<u8>)> {
    let f = |op, p: &[u8], fin| frame(op, p, fin, masked);
    let mut seeds = vec![
        (
            "text-heartbeat".to_owned(),
            f(OpCode::Text, HEARTBEAT, true),
        ),
        ("text-empty".into(), f(OpCode::Text, b"", true)),
        (
            "text-utf8".into(),
            f(OpCode::Text, "é€中𝄞".as_bytes(), true),
        ),
        ("text-bad-utf8".into(), f(OpCode::Text, b"\xC3\x28", true)),
        ("binary".into(), f(OpCode::Binary, &[0, 1, 2, 0xFF], true)),
        ("ping".into(), f(OpCode::Ping, b"hi", true)),
        ("ping-125".into(), f(OpCode::Ping, &[b'p'; 125], true)),
        ("pong-empty".into(), f(OpCode::Pong, b"", true)),
        (
            "continuation-alone".into(),
            f(OpCode::Continuation, b"x", true),
        ),
    ];
    for len in [125usize, 126, 127, 65535, 65536] {
        seeds.push((
            format!("text-len-{len}"),
            f(OpCode::Text, &vec![b'a'; len], true),
        ));
    }
    // Fragmented: text split inside a character, with a ping and an empty fragment between.
    let text = "[2,\"1\",\"DataTransfer\",{\"data\":\"é€中𝄞\"}]".as_bytes();
    let mut frag = f(OpCode::Text, &text[..31], false);
    frag.extend(f(OpCode::Ping, b"between", true));
    frag.extend(f(OpCode::Continuation, b"", false));
    frag.extend(f(OpCode::Continuation, &text[31..], true));
    seeds.push(("fragmented-text".into(), frag));
    let mut frag = f(OpCode::Binary, b"ab", false);
    frag.extend(f(OpCode::Pong, b"", true));
    frag.extend(f(OpCode::Continuation, b"cd", true));
    seeds.push(("fragmented-binary".into(), frag));
    let mut frag = f(OpCode::Text, b"ab", false);
    frag.extend(f(OpCode::Text, b"cd", true));
    seeds.push(("fragmented-interrupted".into(), frag));
    // Close frames: empty, codes valid and not, reasons valid and not, one byte.
    seeds.push(("close-empty".into(), f(OpCode::Close, b"", true)));
    seeds.push(("close-one-byte".into(), f(OpCode::Close, b"\x03", true)));
    for code in [1000u16, 1001, 1005, 1009, 1015, 3000, 4999, 5000] {
        let mut out = Vec::new();
        encode_close(&mut out, code, "bye ✓", masked.then_some(KEY));
        seeds.push((format!("close-{code}"), out));
    }
    let mut p = 1000u16.to_be_bytes().to_vec();
    p.extend_from_slice(b"\xFF\xFE");
    seeds.push(("close-bad-reason".into(), f(OpCode::Close, &p, true)));
    let mut after = f(OpCode::Close, &1000u16.to_be_bytes(), true);
    after.extend(f(OpCode::Text, b"late", true));
    seeds.push(("close-then-text".into(), after));
    // Length edges with the payload cut short: 2^63 - 1, 2^63, 2^64 - 1, 2^32, 1 MiB + 1.
    for (name, len) in [
        ("2p63-minus-1", (1u64 << 63) - 1),
        ("2p63", 1 << 63),
        ("2p64-minus-1", u64::MAX),
        ("2p32", 1 << 32),
        ("1mib-plus-1", (1 << 20) + 1),
    ] {
        seeds.push((format!("len64-{name}"), header64(0x2, len, masked, 3)));
    }
    // Non-minimal length encodings, a control frame with a 16-bit length, reserved bits and
    // opcodes, and the wrong masking for the role.
    seeds.push((
        "len16-non-minimal".into(),
        [
            vec![0x81, if masked { 0xFE } else { 0x7E }, 0, 5],
            if masked { KEY.to_vec() } else { vec![] },
            b"hello".to_vec(),
        ]
        .concat(),
    ));
    seeds.push((
        "ping-len16".into(),
        vec![0x89, if masked { 0xFE } else { 0x7E }, 0, 126],
    ));
    seeds.push(("rsv1".into(), vec![0xC1, 0x00]));
    seeds.push(("opcode-3".into(), vec![0x83, 0x00]));
    seeds.push(("opcode-b".into(), vec![0x8B, 0x00]));
    seeds.push(("ping-not-fin".into(), vec![0x09, 0x00]));
    seeds.push((
        "wrong-mask".into(),
        frame(OpCode::Text, b"x", true, !masked),
    ));
    seeds
}

fn request(id: &str, extra: &str) -> Vec<u8> {
    format!(
        "GET /ocpp/{id} HTTP/1.1\r\nHost: csms.example\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Protocol: ocpp1.6, ocpp2.0.1\r\n{extra}\r\n"
    )
    .into_bytes()
}

fn requests() -> Vec<(String, Vec<u8>)> {
    let good = String::from_utf8(request("CP001", "")).expect("ascii");
    let mut seeds = vec![
        ("good".to_owned(), good.clone().into_bytes()),
        ("client-request".into(), {
            let mut out = Vec::new();
            let key = key_from_nonce(&[7; 16]);
            client_request(
                &mut out,
                "csms.example",
                "/ocpp/CP001",
                &key,
                &["ocpp1.6"],
                Some(("CP001", "pw")),
            );
            out
        }),
        (
            "basic-auth".into(),
            request(
                "CP001",
                "Authorization: Basic Q1AwMDE6MDEyMzQ1Njc4OWFiY2RlZg==\r\n",
            ),
        ),
        (
            "basic-binary-password".into(),
            request("CP001", "Authorization: Basic Q1AwMDE6/wAB\r\n"),
        ),
        (
            "bearer".into(),
            request("CP001", "Authorization: Bearer abc\r\n"),
        ),
        (
            "auth-twice".into(),
            request(
                "CP001",
                "Authorization: Basic eDp5\r\nAuthorization: Basic eDp5\r\n",
            ),
        ),
        ("id-percent".into(), request("CP%20001%C3%A9", "")),
        ("id-nfd".into(), request("Cafe%CC%81", "")),
        ("id-angstrom-sign".into(), request("%E2%84%AB", "")),
        ("id-zero-width".into(), request("CP%E2%80%8B1", "")),
        ("id-rtl-override".into(), request("%E2%80%AECP1", "")),
        ("id-emoji".into(), request("%F0%9F%94%8C", "")),
        ("id-raw-utf8".into(), request("caf\u{e9}", "")),
        ("id-slash".into(), request("a%2Fb", "")),
        ("id-colon".into(), request("a%3Ab", "")),
        ("id-control".into(), request("a%0Ab", "")),
        ("id-bad-percent".into(), request("a%zz", "")),
        ("id-49".into(), request(&"x".repeat(49), "")),
        ("id-extra-segment".into(), request("CP1/x", "")),
        ("id-query".into(), request("CP1?token=a/b", "")),
        (
            "early-frame".into(),
            [
                request("CP1", ""),
                frame(OpCode::Text, HEARTBEAT, true, true),
            ]
            .concat(),
        ),
        (
            "long-header".into(),
            request("CP1", &format!("X-Long: {}\r\n", "a".repeat(9000))),
        ),
        (
            "many-headers".into(),
            request("CP1", &"X-A: 1\r\n".repeat(70)),
        ),
        (
            "many-protocols".into(),
            request(
                "CP1",
                &format!("Sec-WebSocket-Protocol: {}\r\n", "a,".repeat(2000)),
            ),
        ),
        ("lf-only".into(), good.replace("\r\n", "\n").into_bytes()),
        ("no-end".into(), good.trim_end().as_bytes().to_vec()),
        ("obs-fold".into(), request("CP1", "X-Folded: a\r\n b\r\n")),
        (
            "non-utf8-value".into(),
            [good.trim_end().as_bytes(), b"\r\nX-Bin: \xFF\xFE\r\n\r\n"].concat(),
        ),
    ];
    for (name, from, to) in [
        ("post", "GET", "POST"),
        ("http10", "HTTP/1.1", "HTTP/1.0"),
        ("version-8", "Version: 13", "Version: 8"),
        ("no-version", "Sec-WebSocket-Version: 13\r\n", ""),
        ("version-twice", "Sec-WebSocket-Version: 13\r\n", "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Version: 13\r\n"),
        ("no-key", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n", ""),
        ("key-twice", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"),
        ("key-short", "dGhlIHNhbXBsZSBub25jZQ==", "c2hvcnQ="),
        ("no-upgrade", "Upgrade: websocket\r\n", ""),
        ("upgrade-h2c", "Upgrade: websocket", "Upgrade: h2c"),
        ("connection-close", "Connection: Upgrade", "Connection: close"),
        ("no-protocol", "Sec-WebSocket-Protocol: ocpp1.6, ocpp2.0.1\r\n", ""),
        ("bad-header-name", "Host:", "Ho st:"),
    ] {
        seeds.push((name.to_owned(), good.replacen(from, to, 1).into_bytes()));
    }
    seeds
}

fn responses() -> Vec<(String, Vec<u8>)> {
    let accept = ampgate_native::codec::accept_key("dGhlIHNhbXBsZSBub25jZQ==");
    let ok = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {accept}\r\nSec-WebSocket-Protocol: ocpp1.6\r\n\r\n"
    );
    vec![
        ("101".to_owned(), ok.clone().into_bytes()),
        ("101-then-frame".into(), [ok.as_bytes(), &frame(OpCode::Text, HEARTBEAT, true, false)].concat()),
        ("101-bad-accept".into(), ok.replace(&accept, "AAAA").into_bytes()),
        ("101-two-protocols".into(), ok.replace("ocpp1.6", "ocpp1.6, ocpp2.0.1").into_bytes()),
        ("503".into(), b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 7\r\nContent-Length: 5\r\n\r\nbusy\n".to_vec()),
        ("429-date".into(), b"HTTP/1.1 429 Too Many Requests\r\nRetry-After: Fri, 31 Dec 1999 23:59:59 GMT\r\n\r\n".to_vec()),
        ("401".into(), b"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"x\"\r\n\r\n".to_vec()),
        ("garbage".into(), b"SSH-2.0-OpenSSH_9.6\r\n".to_vec()),
    ]
}

fn charger_ids() -> Vec<(String, Vec<u8>)> {
    [
        "/ocpp/CP001",
        "/ocpp/Cafe%CC%81",
        "/ocpp/%E2%84%AB",
        "/ocpp/%C3%85",
        "/ocpp/%E2%80%8B",
        "/ocpp/a%2Fb?x=1#f",
        "/ocpp//",
        "/ocpp/%",
    ]
    .iter()
    .enumerate()
    .map(|(i, p)| (format!("path-{i}"), p.as_bytes().to_vec()))
    .collect()
}

/// Write the seed corpus under `dir` (one subdirectory per target); returns the file count.
pub fn write_corpus(dir: &Path) -> std::io::Result<usize> {
    let mut n = 0;
    for (sub, seeds) in [
        ("server", frames(true)),
        ("client", frames(false)),
        ("upgrade", requests()),
        ("response", responses()),
        ("charger_id", charger_ids()),
    ] {
        let d = dir.join(sub);
        std::fs::create_dir_all(&d)?;
        for (name, data) in seeds {
            std::fs::write(d.join(format!("{name}.bin")), data)?;
            n += 1;
        }
    }
    Ok(n)
}
