//! The seeded slice of the codec fuzzer that `cargo test` runs (the long run is `make fuzz`,
//! bench/fuzz_codec.rs): the committed corpus replayed (crash regressions included), then a fixed
//! seed's worth of generated and mutated inputs. Fails on any panic, over-allocation, hang (an
//! input over 5 s: no timing tie on a loaded box, only a real hang), split-dependent result or
//! broken decoder promise, and when the generator stops reaching every error the codec has.

#[path = "engine.rs"]
mod engine;

use std::path::PathBuf;
use std::time::Duration;

use ampgate_native::codec::ProtocolError;

#[global_allocator]
static ALLOC: engine::CountingAlloc = engine::CountingAlloc;

const SEED: u64 = 0x5EED_0000_0000_0015;
const INPUTS: u64 = 100_000;

fn corpus() -> engine::Corpus {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("bench/fuzz/corpus");
    let corpus = engine::Corpus::load(&dir).expect("read bench/fuzz/corpus");
    assert!(
        corpus.len() > 100,
        "the corpus is missing: {}",
        dir.display()
    );
    corpus
}

fn assert_clean(report: &engine::Report) {
    assert_eq!(
        report.failed(),
        0,
        "{}\nfailures:\n{}",
        report.table(),
        report.failures.join("\n")
    );
}

/// One test, so no other test thread allocates while the counting allocator measures.
#[test]
fn codec_fuzz_seeded_slice() {
    assert!(engine::allocator_is_counting());
    let corpus = corpus();
    let mut replay = engine::Report::default();
    engine::run_corpus(&corpus, SEED, &mut replay, &None);
    assert_clean(&replay);

    let cfg = engine::Config {
        seed: SEED,
        inputs: INPUTS,
        time_cap: Duration::from_secs(600),
        slow_input: Duration::from_secs(5),
        crash_dir: None,
        watchdog: None,
    };
    let report = engine::run(&cfg, &corpus, &mut |_| {});
    assert_clean(&report);
    assert_eq!(report.inputs, INPUTS);
    // The slice must reach every error the frame decoder can return (it is worth little if the
    // generator drifts away from them), and the handshake's refusals.
    let server = &report.targets[&engine::Target::Server].labels;
    for e in ProtocolError::ALL {
        if e == ProtocolError::MASKED_FROM_SERVER {
            continue; // a client-side error
        }
        assert!(server.contains_key(e.reason), "never reached: {}", e.reason);
    }
    assert!(report.targets[&engine::Target::Client]
        .labels
        .contains_key(ProtocolError::MASKED_FROM_SERVER.reason));
    let upgrade = &report.targets[&engine::Target::Upgrade].labels;
    for label in [
        "101",
        "404 bad charge point id",
        "404 unknown path",
        "400 bad Sec-WebSocket-Key",
        "400 missing Sec-WebSocket-Key",
        "405 method not allowed",
        "426 unsupported websocket version",
        "431 too many headers",
        "431 request header too large",
        "incomplete",
    ] {
        assert!(
            upgrade.contains_key(label),
            "never reached: {label} (have {upgrade:?})"
        );
    }
}
