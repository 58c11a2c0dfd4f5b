//! What the host keeps for an instance between calls: a large export batch leaves nothing
//! on the host's side once its call is over (the request is not held until the next call).

use magpie_host::{Host, Instance, InstanceSpec, Limits};
use magpie_sdk::abi::{ExportBatch, ExportBatchBuilder, Label};
use magpie_testkit::guest;
use std::borrow::Cow;
use std::time::Duration;

async fn exporter() -> Instance {
    let host = Host::new().unwrap();
    let plugin = host
        .load("remote-write", &guest("remote-write"))
        .await
        .unwrap();
    let mut spec = InstanceSpec::new("rw");
    // Generous limits: tests run an unoptimised host on a shared machine.
    spec.limits = Limits {
        memory_bytes: 64 << 20,
        cpu: Duration::from_secs(20),
        wall: Duration::from_secs(60),
    };
    host.instantiate(&plugin, &spec).await.unwrap()
}

/// `n` node_exporter-like series of one point each.
fn batch(n: usize) -> ExportBatch<'static> {
    let mut b = ExportBatchBuilder::default();
    for i in 0..n {
        b.series([
            Label::new("__name__", "node_network_receive_bytes_total"),
            Label {
                name: Cow::Borrowed("cpu"),
                value: Cow::Owned((i % 64).to_string()),
            },
            Label {
                name: Cow::Borrowed("device"),
                value: Cow::Owned(format!("eth{i}")),
            },
            Label::new("instance", "gateway-17.example.net:9100"),
            Label::new("job", "node"),
        ]);
        b.point(1_700_000_000_000, i as f64);
    }
    b.finish()
}

#[tokio::test]
async fn a_large_export_leaves_no_request_behind() {
    let mut inst = exporter().await;
    let payloads = inst.export(&batch(10_000), false).await.unwrap();
    assert!(!payloads.is_empty());
    assert_eq!(
        inst.held_bytes(),
        0,
        "the 10k-series request outlived its call"
    );
    // A small call after it holds nothing either.
    inst.export(&batch(3), false).await.unwrap();
    assert_eq!(inst.held_bytes(), 0);
}
