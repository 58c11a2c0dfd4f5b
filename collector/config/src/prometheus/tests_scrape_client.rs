//! A scrape job's credentials, TLS files and `honor_timestamps`: each mapping to `[[scrape]]`
//! keys, and each refusal (secrets written in the file, skipped verification) with its line.

use super::*;
use crate::{Config, parse};

fn convert_text(text: &str) -> Result<String, Vec<String>> {
    convert_from(Path::new("p.yml"), text, Some(Path::new("/etc/prometheus")))
        .map_err(|e| e.iter().map(ToString::to_string).collect())
}

fn config(text: &str) -> Config {
    let toml = convert_text(text).unwrap_or_else(|e| panic!("{e:#?}"));
    parse(Path::new("converted.toml"), &toml)
        .unwrap_or_else(|e| panic!("{e:#?}\n{toml}"))
        .config
}

#[test]
fn scrape_credentials_and_tls_files_map_to_the_jobs_keys() {
    let c = config(
        "scrape_configs:\n\
         - job_name: basic\n  basic_auth: {username: scraper, password_file: scrape.pass}\n  static_configs: [{targets: ['h:1']}]\n\
         - job_name: authz\n  authorization: {type: Bearer, credentials_file: /run/token}\n  honor_timestamps: false\n\
         - job_name: token\n  bearer_token_file: token\n  honor_timestamps: true\n\
         - job_name: tls\n  scheme: https\n  tls_config: {ca_file: ca.pem, cert_file: /c.pem, key_file: /c.key, insecure_skip_verify: false}\n",
    );
    let job = |i: usize| c.scrape[i].get_ref();
    let b = job(0).basic_auth.as_ref().unwrap();
    assert_eq!(b.username, "scraper");
    assert_eq!(b.password_file, Path::new("/etc/prometheus/scrape.pass"));
    assert!(job(0).honor_timestamps);
    assert_eq!(
        job(1).bearer_token_file.as_deref(),
        Some(Path::new("/run/token"))
    );
    assert!(!job(1).honor_timestamps);
    assert_eq!(
        job(2).bearer_token_file.as_deref(),
        Some(Path::new("/etc/prometheus/token"))
    );
    assert!(job(2).honor_timestamps);
    let t = job(3).tls_options();
    assert_eq!(
        (
            t.ca_file.as_deref(),
            t.cert_file.as_deref(),
            t.key_file.as_deref()
        ),
        (
            Some(Path::new("/etc/prometheus/ca.pem")),
            Some(Path::new("/c.pem")),
            Some(Path::new("/c.key"))
        )
    );
    assert!(job(3).basic_auth.is_none() && job(3).bearer_token_file.is_none());
}

#[test]
fn scrape_secrets_in_the_file_and_skipped_verification_are_refused_by_line() {
    let errs = convert_text(
        "scrape_configs:\n\
         - job_name: a\n  basic_auth: {username: u, password: p}\n  authorization: {credentials: c}\n  bearer_token: t\n  tls_config: {insecure_skip_verify: true, key: k}\n  oauth2: {}\n  proxy_url: http://p\n\
         - job_name: b\n  basic_auth: {username: u}\n  authorization: {type: Basic, credentials_file: f}\n",
    )
    .expect_err("refused");
    let want = [
        "p.yml:3: scrape_configs[0].basic_auth.password: a password written in the file",
        "p.yml:4: scrape_configs[0].authorization.credentials: credentials written in the file",
        "p.yml:5: scrape_configs[0].bearer_token: a token written in the file",
        "p.yml:6: scrape_configs[0].tls_config.insecure_skip_verify: magpie always verifies",
        "p.yml:6: scrape_configs[0].tls_config.key: inline PEM",
        "p.yml:7: scrape_configs[0].oauth2: `oauth2` is not supported for scrapes",
        "p.yml:8: scrape_configs[0].proxy_url: `proxy_url` is not supported for scrapes",
        "p.yml:10: scrape_configs[1].basic_auth: `basic_auth` needs a `password_file`",
        "p.yml:11: scrape_configs[1].authorization.type: only `type: Bearer`",
    ];
    assert_eq!(errs.len(), want.len(), "{errs:#?}");
    for (e, w) in errs.iter().zip(want) {
        // `p.yml:LINE:COL: key: why`, compared without the column.
        let (line, rest) = w.split_once(": ").unwrap();
        let (at, msg) = e.split_once(": ").unwrap();
        assert!(
            at.starts_with(&format!("{line}:")) && msg.starts_with(rest),
            "{e}\nwanted: {w}"
        );
    }
}

#[test]
fn honor_timestamps_false_is_written_only_when_set() {
    let toml = convert_text(
        "scrape_configs:\n- job_name: a\n  honor_timestamps: false\n- job_name: b\n  honor_timestamps: true\n",
    )
    .unwrap();
    assert_eq!(
        toml.matches("honor_timestamps = false").count(),
        1,
        "{toml}"
    );
    assert!(!toml.contains("honor_timestamps = true"), "{toml}");
}

#[test]
fn server_name_maps_for_scrapes_and_remote_writes_and_is_checked() {
    let c = config(
        "scrape_configs:\n\
         - job_name: named\n  scheme: https\n  tls_config: {ca_file: ca.pem, server_name: metrics.example.org}\n  static_configs: [{targets: ['10.0.0.7:9100']}]\n\
         - job_name: plain\n  scheme: https\n  tls_config: {ca_file: ca.pem}\n\
         remote_write:\n  - url: https://10.0.0.9/api/v1/write\n    tls_config: {server_name: central.example.org}\n",
    );
    let t = c.scrape[0].get_ref().tls_options();
    assert_eq!(t.server_name.as_deref(), Some("metrics.example.org"));
    assert_eq!(
        t.ca_file.as_deref(),
        Some(Path::new("/etc/prometheus/ca.pem"))
    );
    assert_eq!(c.scrape[1].get_ref().tls_options().server_name, None);
    let e = crate::Tls::options(c.export[0].get_ref().tls.as_ref());
    assert_eq!(e.server_name.as_deref(), Some("central.example.org"));

    // Discovery keeps refusing it; a name that is neither a host name nor an address is
    // refused naming the job.
    let errs = convert_text(
        "scrape_configs:\n\
         - job_name: a\n  http_sd_configs: [{url: 'https://sd/', tls_config: {server_name: sd.example.org}}]\n",
    )
    .expect_err("refused");
    assert_eq!(errs.len(), 1, "{errs:#?}");
    assert!(
        errs[0].contains("http_sd_configs[0].tls_config.server_name"),
        "{errs:#?}"
    );
    let toml = convert_text(
        "scrape_configs:\n- job_name: odd\n  tls_config: {server_name: 'not a host'}\n",
    )
    .unwrap();
    let errs = parse(Path::new("converted.toml"), &toml).expect_err("bad name");
    let text = format!("{errs:?}");
    assert!(
        text.contains("scrape job `odd`") && text.contains("server_name `not a host`"),
        "{text}"
    );
}
