//! The host a scrape job's plugin runs on: the shared one, or, for a job with credentials or
//! TLS settings, a clone whose fetcher is the job's own ([`magpie_scrape::fetch::JobFetch`]).
//! Secrets are read here, at every start and reload, so a rotated password is picked up by
//! SIGHUP; the engine and linker stay shared.

use crate::config::Scrape;
use anyhow::Result;
use magpie_host::Host;
use magpie_scrape::fetch::JobFetch;
use magpie_transport::HttpClient;
use std::sync::Arc;

/// The host job `s` scrapes through.
///
/// # Errors
/// An unreadable secret, CA, certificate or key file, naming the job and the file (never the
/// secret).
pub(super) fn job_host(shared: &Host, s: &Scrape) -> Result<Host> {
    if !s.has_client_settings() {
        return Ok(shared.clone());
    }
    let job = s.job.get_ref();
    let client = HttpClient::new(&s.tls_options())
        .map_err(|e| anyhow::anyhow!("scrape job `{job}`: tls: {e}"))?;
    let auth = s
        .auth()
        .map_err(|e| anyhow::anyhow!("scrape job `{job}`: credentials: {e}"))?;
    Ok(shared
        .clone()
        .with_fetcher(Arc::new(JobFetch::new(client, auth))))
}
