//! The device imports with a hostile guest and real sockets: a link is refused unless a
//! target grants exactly it, a read that outlasts the call's deadline ends in a timeout the
//! guest reports (not a fault), floods of opens are capped, and a link does not survive the
//! call that opened it.

mod support;

use magpie_host::{Grants, Host, PluginError};
use magpie_sdk::abi::Value;
use magpie_testkit::guest;
use std::time::{Duration, Instant};
use support::{failure, request, scrape, sink, spec, table};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn hostile(behavior: &str, arg: &str, granted: &[&String]) -> magpie_host::InstanceSpec {
    let config = table(vec![
        ("behavior", Value::Str(behavior.into())),
        ("arg", Value::Str(arg.into())),
    ]);
    spec(
        "test",
        config,
        Grants::new(granted.iter().map(|g| (*g).clone()).collect(), &[]).unwrap(),
    )
}

/// A TCP server that answers every `ping` with `pong`, or (`silent`) never answers.
async fn server(silent: bool) -> String {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = l.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut buf = [0u8; 4];
                while s.read_exact(&mut buf).await.is_ok() {
                    if !silent {
                        let _ = s.write_all(b"pong").await;
                    }
                }
            });
        }
    });
    format!("tcp://{addr}")
}

#[tokio::test]
async fn a_granted_tcp_target_is_reached_and_any_other_refused_with_the_reason() {
    let host = Host::new().unwrap();
    let t = server(false).await;
    let (r, seen) = scrape(
        &host,
        "hostile",
        &hostile("tcp", &t, &[&t]),
        &request("", 0, 0),
        None,
    )
    .await;
    r.unwrap();
    assert_eq!(seen[0].labels, [("answer".into(), "pong".into())]);

    let other = server(false).await;
    let (r, seen) = scrape(
        &host,
        "hostile",
        &hostile("tcp", &other, &[&t]),
        &request("", 0, 0),
        None,
    )
    .await;
    let why = failure(r);
    assert!(
        why.contains("denied") && why.contains("not one of the targets granted"),
        "{why}"
    );
    assert!(seen.is_empty());

    // The grant is for that scheme too: a udp:// target does not open a TCP connection.
    let udp = t.replace("tcp://", "udp://");
    let (r, _) = scrape(
        &host,
        "hostile",
        &hostile("udp-as-tcp", &udp, &[&udp]),
        &request("", 0, 0),
        None,
    )
    .await;
    let why = failure(r);
    assert!(why.contains("not a tcp://"), "{why}");
}

#[tokio::test]
async fn udp_datagrams_go_to_the_granted_target_only() {
    let sock = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let t = format!("udp://{}", sock.local_addr().unwrap());
    tokio::spawn(async move {
        let mut buf = [0u8; 64];
        while let Ok((n, from)) = sock.recv_from(&mut buf).await {
            let mut answer = b"re:".to_vec();
            answer.extend_from_slice(&buf[..n]);
            let _ = sock.send_to(&answer, from).await;
        }
    });
    let host = Host::new().unwrap();
    let (r, seen) = scrape(
        &host,
        "hostile",
        &hostile("udp", &t, &[&t]),
        &request("", 0, 0),
        None,
    )
    .await;
    r.unwrap();
    assert_eq!(seen[0].labels, [("answer".into(), "re:ping".into())]);
    let (r, _) = scrape(
        &host,
        "hostile",
        &hostile("udp", "udp://127.0.0.1:9", &[&t]),
        &request("", 0, 0),
        None,
    )
    .await;
    assert!(failure(r).contains("denied"));
}

#[tokio::test]
async fn a_serial_device_needs_its_own_grant() {
    let host = Host::new().unwrap();
    let granted = "rtu:///dev/ttyUSB7?baud=9600".to_string();
    let (r, _) = scrape(
        &host,
        "hostile",
        &hostile("serial", "rtu:///dev/ttyS0?baud=9600", &[&granted]),
        &request("", 0, 0),
        None,
    )
    .await;
    let why = failure(r);
    assert!(
        why.contains("denied") && why.contains("/dev/ttyS0"),
        "{why}"
    );
    // Granted but absent: not found, named.
    let (r, _) = scrape(
        &host,
        "hostile",
        &hostile("serial", &granted, &[&granted]),
        &request("", 0, 0),
        None,
    )
    .await;
    let why = failure(r);
    assert!(
        why.contains("not found") && why.contains("/dev/ttyUSB7"),
        "{why}"
    );
    // Line settings the host cannot take are refused with the key.
    let bad = "rtu:///dev/null?parity=Q".to_string();
    let (r, _) = scrape(
        &host,
        "hostile",
        &hostile("serial", &bad, &[&bad]),
        &request("", 0, 0),
        None,
    )
    .await;
    let why = failure(r);
    assert!(why.contains("`parity`"), "{why}");
}

#[tokio::test]
async fn a_read_past_the_deadline_times_out_and_the_call_fails_cleanly() {
    let host = Host::new().unwrap();
    let t = server(true).await;
    let mut s = hostile("tcp-wait", &t, &[&t]);
    s.limits.wall = Duration::from_secs(2);
    let plugin = host.load("hostile", &guest("hostile")).await.unwrap();
    let mut runner = magpie_host::Runner::new(host.clone(), plugin, s);
    let started = Instant::now();
    let (sk, _) = sink(None);
    let (_, r) = runner.scrape(&request("", 0, 0), sk).await;
    let took = started.elapsed();
    match r {
        Err(PluginError::Failed { reason, .. }) => {
            assert!(
                reason.contains("Timeout") && reason.contains("no answer within"),
                "{reason}"
            );
        }
        other => panic!("expected the guest to report the timeout, got {other:?}"),
    }
    // A reported failure, not a fault: the instance is kept and nothing is quarantined.
    assert_eq!(runner.consecutive_faults(), 0);
    println!("a silent device ended the call after {took:?} (wall limit 2 s)");
}

#[tokio::test]
async fn floods_of_opens_are_capped_and_links_do_not_survive_the_call() {
    let host = Host::new().unwrap();
    let t = server(false).await;
    let (r, seen) = scrape(
        &host,
        "hostile",
        &hostile("open-flood", &t, &[&t]),
        &request("", 0, 0),
        None,
    )
    .await;
    r.unwrap();
    assert_eq!(seen[0].value, 16.0, "{seen:?}");
    assert_eq!(seen[0].labels, [("refused".into(), "limit reached".into())]);
    let (r, seen) = scrape(
        &host,
        "hostile",
        &hostile("reopen-flood", &t, &[&t]),
        &request("", 0, 0),
        None,
    )
    .await;
    r.unwrap();
    assert_eq!(seen[0].labels, [("refused".into(), "limit reached".into())]);

    // One instance, two calls: the second finds the first's connection gone.
    let plugin = host.load("hostile", &guest("hostile")).await.unwrap();
    let mut inst = host
        .instantiate(&plugin, &hostile("keep", &t, &[&t]))
        .await
        .unwrap();
    let (sk, seen) = sink(None);
    let (_, r) = inst.scrape(&request("", 0, 0), sk).await;
    r.unwrap();
    assert_eq!(seen.lock().unwrap()[0].name, "hostile_kept");
    let (sk, seen) = sink(None);
    let (_, r) = inst.scrape(&request("", 0, 0), sk).await;
    r.unwrap();
    let seen = seen.lock().unwrap();
    assert_eq!(seen[0].name, "hostile_stale_write");
    assert_eq!(
        seen[0].labels,
        [("result".into(), "invalid argument".into())]
    );
}
