//! Seeded fuzzing of the WebSocket frame codec and the HTTP upgrade parsers (stable toolchain, no
//! instrumentation): structure-aware generation and mutation of the corpus in bench/fuzz/corpus/,
//! pure random bytes, arbitrary read splits; no panic, hang, over-allocation or split-dependent
//! result allowed. The engine and its checks are bench/fuzz/engine.rs.
//!
//! Run (what `make fuzz` does):
//!   cargo bench --profile fuzz --bench fuzz_codec -- --inputs 100000000 --seconds 3000 \
//!       --json bench/results/fuzz-codec.json
//! Options: --seed N, --slow-ms N (an input slower than this counts as a hang, default 1000),
//! --watchdog-s N (abort on an input that runs this long, default 30), --corpus DIR,
//! --crash-dir DIR (failing inputs are written there, default bench/fuzz/crashes),
//! --write-corpus DIR (write the generated seed corpus and exit), --replay FILE (run one saved
//! input, named `<target>-max<N>-…` as the crash directory names them, whole and byte by byte).
//! Exit status 1 when anything failed. Prints progress every 10 s, then a table; the JSON has the
//! same figures plus, per target, how often each outcome (error reason, status) was reached.

#[path = "fuzz/engine.rs"]
mod engine;
#[path = "fuzz/seeds.rs"]
mod seeds;

use std::path::PathBuf;
use std::time::Duration;

#[global_allocator]
static ALLOC: engine::CountingAlloc = engine::CountingAlloc;

fn parse_count(s: &str) -> u64 {
    // Accepts 100000000, 1e8, 10^8.
    if let Some((m, e)) = s.split_once(['e', 'E']).or_else(|| {
        s.split_once('^').map(|(b, e)| {
            assert_eq!(b, "10", "only 10^N");
            ("1", e)
        })
    }) {
        let m: u64 = m.parse().expect("count");
        let e: u32 = e.parse().expect("exponent");
        return m * 10u64.pow(e);
    }
    s.parse().expect("count")
}

fn main() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let mut seed = 0x5EED_F022_C0DE_C000_u64;
    let mut inputs = 1_000_000u64;
    let mut seconds = 600u64;
    let mut slow_ms = 1000u64;
    let mut watchdog_s = 30u64;
    let mut json: Option<PathBuf> = None;
    let mut corpus_dir = root.join("bench/fuzz/corpus");
    let mut crash_dir = root.join("bench/fuzz/crashes");
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = || args.next().unwrap_or_else(|| panic!("{a} needs a value"));
        match a.as_str() {
            "--seed" => seed = parse_count(&val()),
            "--inputs" => inputs = parse_count(&val()),
            "--seconds" => seconds = parse_count(&val()),
            "--slow-ms" => slow_ms = parse_count(&val()),
            "--watchdog-s" => watchdog_s = parse_count(&val()),
            "--json" => json = Some(PathBuf::from(val())),
            "--corpus" => corpus_dir = PathBuf::from(val()),
            "--crash-dir" => crash_dir = PathBuf::from(val()),
            "--write-corpus" => {
                let dir = PathBuf::from(val());
                let n = seeds::write_corpus(&dir).expect("write corpus");
                println!("wrote {n} corpus files under {}", dir.display());
                return;
            }
            "--replay" => {
                let path = PathBuf::from(val());
                let name = path
                    .file_name()
                    .expect("file")
                    .to_string_lossy()
                    .into_owned();
                let data = std::fs::read(&path).expect("read the input");
                let report = engine::replay(&name, data).expect("name: <target>-max<N>-...");
                println!("{}{}", report.table(), report.failures.join("\n"));
                std::process::exit(i32::from(report.failed() > 0));
            }
            "--bench" => {} // passed by `cargo bench`
            other => panic!("unknown option {other}"),
        }
    }
    assert!(
        engine::allocator_is_counting(),
        "the counting allocator is not installed"
    );
    let corpus = engine::Corpus::load(&corpus_dir).expect("read the corpus");
    let cfg = engine::Config {
        seed,
        inputs,
        time_cap: Duration::from_secs(seconds),
        slow_input: Duration::from_millis(slow_ms),
        crash_dir: Some(crash_dir),
        watchdog: Some(Duration::from_secs(watchdog_s)),
    };
    // The corpus itself first (regressions included), then the seeded loop.
    let mut corpus_report = engine::Report::default();
    engine::run_corpus(&corpus, seed, &mut corpus_report, &cfg.crash_dir);
    eprintln!(
        "corpus: {} files, {} runs, {} failures",
        corpus.len(),
        corpus_report.inputs,
        corpus_report.failed()
    );
    let report = engine::run(&cfg, &corpus, &mut |r| {
        eprintln!(
            "{} inputs, {:.0}/s, failures {}",
            r.inputs,
            r.inputs_per_s(),
            r.failed()
        );
    });
    let mut out = report.to_json();
    // The corpus replay goes in as its own key, before the final brace.
    out.truncate(out.trim_end().len() - 1);
    out.truncate(out.trim_end().len());
    out.push_str(&format!(
        ",\n  \"corpus_replay\": {{\"runs\": {}, \"failures\": {}}},\n  \"command\": \"make fuzz\"\n}}\n",
        corpus_report.inputs,
        corpus_report.failed()
    ));
    println!("{out}");
    println!("{}", report.table());
    for f in report.failures.iter().chain(&corpus_report.failures) {
        println!("FAILED {f}");
    }
    if let Some(path) = json {
        std::fs::write(&path, &out).expect("write the JSON");
    }
    if report.failed() + corpus_report.failed() > 0 {
        std::process::exit(1);
    }
}
