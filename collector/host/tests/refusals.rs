//! Modules that break the contract in their shape are refused at load with the reason, and a
//! guest that hands the host garbage gets an ABI error, not a host crash.

use magpie_host::{Host, InstanceSpec, LoadError, PluginError, Runner, SampleSink};
use magpie_sdk::abi::{EmitStatus, Grants, SampleBatch, ScrapeRequest};

fn module(wat: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.wasm");
    std::fs::write(&path, wat::parse_str(wat).unwrap()).unwrap();
    (dir, path)
}

const EXPORTS: &str = r#"
    (memory (export "memory") 1)
    (func (export "magpie_abi_version") (result i32) i32.const 1)
    (func (export "magpie_init") (result i32) i32.const 0)
"#;

async fn refusal(wat: &str) -> String {
    let (_dir, path) = module(wat);
    match Host::new().unwrap().load("odd", &path).await {
        Err(LoadError::Refused { plugin, reason, .. }) => {
            assert_eq!(plugin, "odd");
            reason
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn wasi_imports_are_refused() {
    let r = refusal(&format!(
        r#"(module (import "wasi_snapshot_preview1" "fd_write" (func (param i32 i32 i32 i32) (result i32))) {EXPORTS}
           (func (export "magpie_scrape") (result i32) i32.const 0))"#
    ))
    .await;
    assert!(r.contains("wasi_snapshot_preview1::fd_write"), "{r}");
}

#[tokio::test]
async fn unknown_or_mistyped_imports_are_refused() {
    let r = refusal(&format!(
        r#"(module (import "magpie" "spawn_shell" (func)) {EXPORTS} (func (export "magpie_scrape") (result i32) i32.const 0))"#
    ))
    .await;
    assert!(r.contains("magpie::spawn_shell"), "{r}");
    let r = refusal(&format!(
        r#"(module (import "magpie" "now_ms" (func (result i32))) {EXPORTS} (func (export "magpie_scrape") (result i32) i32.const 0))"#
    ))
    .await;
    assert!(r.contains("wrong signature"), "{r}");
}

#[tokio::test]
async fn missing_exports_and_two_roles_are_refused() {
    let r = refusal(r#"(module (func (export "magpie_scrape") (result i32) i32.const 0))"#).await;
    assert!(r.contains("memory"), "{r}");
    let r = refusal(&format!("(module {EXPORTS})")).await;
    assert!(r.contains("none of"), "{r}");
    let r = refusal(&format!(
        r#"(module {EXPORTS} (func (export "magpie_scrape") (result i32) i32.const 0) (func (export "magpie_export") (result i32) i32.const 0))"#
    ))
    .await;
    assert!(r.contains("one role"), "{r}");
}

#[tokio::test]
async fn not_wasm_is_invalid() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("junk.wasm");
    std::fs::write(&path, b"\x7fELF not a module").unwrap();
    let err = Host::new().unwrap().load("junk", &path).await.unwrap_err();
    assert!(matches!(err, LoadError::Invalid { .. }), "{err:?}");
    assert!(err.to_string().contains("junk"));
}

struct Count(usize);

impl SampleSink for Count {
    fn push(&mut self, batch: &SampleBatch<'_>) -> EmitStatus {
        self.0 += batch.samples.len();
        EmitStatus::Continue
    }
}

fn request() -> ScrapeRequest<'static> {
    ScrapeRequest::V1 {
        target: "".into(),
        scrape_time_ms: 0,
        timeout_ms: 1000,
        body_size_limit: 0,
        sample_limit: 0,
        grants: Grants::default(),
    }
}

#[tokio::test]
async fn garbage_emits_and_wild_pointers_are_abi_errors() {
    // Emits 8 bytes of 0xff (not a batch).
    let garbage = format!(
        r#"(module (import "magpie" "emit" (func $emit (param i32 i32) (result i32))) {EXPORTS}
           (data (i32.const 16) "\ff\ff\ff\ff\ff\ff\ff\ff")
           (func (export "magpie_scrape") (result i32) (drop (call $emit (i32.const 16) (i32.const 8))) i32.const 0))"#
    );
    let (_dir, path) = module(&garbage);
    let host = Host::new().unwrap();
    let plugin = host.load("garbage", &path).await.unwrap();
    let mut runner = Runner::new(host.clone(), plugin, InstanceSpec::new("t"));
    let (_, r) = runner.scrape(&request(), Box::new(Count(0))).await;
    assert!(
        matches!(&r, Err(PluginError::Abi { reason, .. }) if reason.contains("undecodable")),
        "{r:?}"
    );

    // Points past the end of memory: the host answers Invalid (-4), the guest returns it.
    let wild = format!(
        r#"(module (import "magpie" "emit" (func $emit (param i32 i32) (result i32))) {EXPORTS}
           (func (export "magpie_scrape") (result i32) (call $emit (i32.const -16) (i32.const 64))))"#
    );
    let (_dir2, path) = module(&wild);
    let plugin = host.load("wild", &path).await.unwrap();
    let mut runner = Runner::new(host, plugin, InstanceSpec::new("t"));
    let (_, r) = runner.scrape(&request(), Box::new(Count(0))).await;
    assert!(
        matches!(&r, Err(PluginError::Abi { reason, .. }) if reason.contains("-4")),
        "{r:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// The decoder entry point: the same contract and the same containment as the scrape one.

fn decode_request(body: &[u8]) -> magpie_sdk::abi::DecodeRequest<'_> {
    magpie_sdk::abi::DecodeRequest::V1 {
        source: "src".into(),
        context: "topic/a".into(),
        content_type: "".into(),
        headers: Vec::new(),
        body: body.into(),
        receive_time_ms: 0,
        sample_limit: 0,
    }
}

async fn decoder(wat: &str, memory_bytes: u64) -> (tempfile::TempDir, Runner) {
    let (dir, path) = module(wat);
    let host = Host::new().unwrap();
    let plugin = host.load("dec", &path).await.unwrap();
    assert_eq!(plugin.info().role, magpie_sdk::abi::Role::Decoder);
    let spec = InstanceSpec {
        limits: magpie_host::Limits {
            memory_bytes,
            cpu: std::time::Duration::from_millis(200),
            wall: std::time::Duration::from_secs(5),
        },
        ..InstanceSpec::new("t")
    };
    (dir, Runner::new(host, plugin, spec))
}

#[tokio::test]
async fn a_decoder_with_a_second_role_or_a_wrong_signature_is_refused() {
    let r = refusal(&format!(
        r#"(module {EXPORTS} (func (export "magpie_scrape") (result i32) i32.const 0) (func (export "magpie_decode") (result i32) i32.const 0))"#
    ))
    .await;
    assert!(r.contains("one role") && r.contains("magpie_decode"), "{r}");
    let r = refusal(&format!(
        r#"(module {EXPORTS} (func (export "magpie_decode") (param i32) (result i32) i32.const 0))"#
    ))
    .await;
    assert!(r.contains("wrong signature"), "{r}");
}

#[tokio::test]
async fn hostile_decoders_are_contained_and_quarantined() {
    // Spins forever: the CPU budget ends it.
    let (_d, mut looping) = decoder(
        &format!(r#"(module {EXPORTS} (func (export "magpie_decode") (result i32) (loop (br 0)) i32.const 0))"#),
        16 << 20,
    )
    .await;
    let (_, r) = looping
        .decode(&decode_request(b"x"), Box::new(Count(0)))
        .await;
    assert!(matches!(r, Err(PluginError::Timeout { .. })), "{r:?}");

    // Grows memory until refused: the memory cap ends it.
    let (_d, mut bomb) = decoder(
        &format!(
            r#"(module {EXPORTS} (func (export "magpie_decode") (result i32)
                 (loop (br_if 0 (i32.ne (memory.grow (i32.const 16)) (i32.const -1)))) unreachable))"#
        ),
        4 << 20,
    )
    .await;
    let (_, r) = bomb.decode(&decode_request(b"x"), Box::new(Count(0))).await;
    assert!(matches!(r, Err(PluginError::MemoryLimit { .. })), "{r:?}");

    // Emits garbage: an ABI error, not a host crash.
    let (_d, mut garbage) = decoder(
        &format!(
            r#"(module (import "magpie" "emit" (func $emit (param i32 i32) (result i32))) {EXPORTS}
               (data (i32.const 16) "\ff\ff\ff\ff\ff\ff\ff\ff")
               (func (export "magpie_decode") (result i32) (drop (call $emit (i32.const 16) (i32.const 8))) i32.const 0))"#
        ),
        16 << 20,
    )
    .await;
    let (_, r) = garbage
        .decode(&decode_request(b"x"), Box::new(Count(0)))
        .await;
    assert!(
        matches!(&r, Err(PluginError::Abi { reason, .. }) if reason.contains("undecodable")),
        "{r:?}"
    );

    // Traps on every message: after QUARANTINE_AFTER faults in a row it is quarantined, and
    // the next message is refused without running it.
    let (_d, mut trapping) = decoder(
        &format!(r#"(module {EXPORTS} (func (export "magpie_decode") (result i32) unreachable))"#),
        16 << 20,
    )
    .await;
    tokio::time::pause();
    for _ in 0..magpie_host::QUARANTINE_AFTER {
        let (_, r) = trapping
            .decode(&decode_request(b"x"), Box::new(Count(0)))
            .await;
        assert!(matches!(r, Err(PluginError::Trap { .. })), "{r:?}");
        tokio::time::advance(magpie_host::BACKOFF_MAX).await;
    }
    let (_, r) = trapping
        .decode(&decode_request(b"x"), Box::new(Count(0)))
        .await;
    assert!(matches!(r, Err(PluginError::Quarantined { .. })), "{r:?}");
}

/// Keeps the value bits of each sample.
struct Values(std::sync::Arc<std::sync::Mutex<Vec<u64>>>);

impl SampleSink for Values {
    fn push(&mut self, batch: &SampleBatch<'_>) -> EmitStatus {
        let mut v = self.0.lock().unwrap();
        v.extend(batch.samples.iter().map(|s| s.value.to_bits()));
        EmitStatus::Continue
    }
}

#[tokio::test]
async fn a_module_older_than_the_v2_request_reads_v1() {
    for (version, tag) in [(1, 0), (2, 0), (3, 1)] {
        // Reads the request, and emits one sample whose value's low byte is the request's
        // first byte: postcard's variant index of `ScrapeRequest`.
        let wat = format!(
            r#"(module (import "magpie" "input" (func $input (param i32 i32) (result i32)))
               (import "magpie" "emit" (func $emit (param i32 i32) (result i32)))
               (memory (export "memory") 1)
               (func (export "magpie_abi_version") (result i32) i32.const {version})
               (func (export "magpie_init") (result i32) i32.const 0)
               (data (i32.const 16) "\00\01\01x\00\00\00\00\00\00\00\00\00\00")
               (func (export "magpie_scrape") (result i32)
                 (drop (call $input (i32.const 1024) (i32.const 4096)))
                 (i32.store8 (i32.const 21) (i32.load8_u (i32.const 1024)))
                 (drop (call $emit (i32.const 16) (i32.const 14)))
                 i32.const 0))"#
        );
        let (_dir, path) = module(&wat);
        let host = Host::new().unwrap();
        let plugin = host.load("v", &path).await.unwrap();
        let mut runner = Runner::new(host, plugin, InstanceSpec::new("t"));
        let v2 = ScrapeRequest::V2 {
            target: "".into(),
            scrape_time_ms: 0,
            timeout_ms: 1000,
            body_size_limit: 0,
            sample_limit: 0,
            grants: Grants::default(),
            replay: magpie_sdk::abi::Replay { token: 2, order: 1 },
        };
        let seen = std::sync::Arc::default();
        let (_, r) = runner
            .scrape(&v2, Box::new(Values(std::sync::Arc::clone(&seen))))
            .await;
        r.unwrap();
        assert_eq!(*seen.lock().unwrap(), [tag], "ABI version {version}");
    }
}
