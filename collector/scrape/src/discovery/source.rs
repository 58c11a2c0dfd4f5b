//! One discovery source of a job, whatever its mechanism, as the job's supervisor drives it:
//! refreshed on its own interval, returning every group when anything changed.

use super::dns::DnsSd;
use super::http::HttpSd;
#[cfg(feature = "kubernetes")]
use super::kubernetes::KubernetesSd;
use super::{FileSd, TargetGroup};
use std::time::Duration;

/// A configured discovery source.
#[derive(Debug)]
pub enum Discoverer {
    /// `file_sd_configs`.
    File(FileSd, Duration),
    /// `http_sd_configs`.
    Http(Box<HttpSd>),
    /// `dns_sd_configs`.
    Dns(DnsSd),
    /// `kubernetes_sd_configs`.
    #[cfg(feature = "kubernetes")]
    Kubernetes(Box<KubernetesSd>),
}

impl Discoverer {
    /// The configuration key, for log lines.
    #[must_use]
    pub const fn name(&self) -> &'static str {
        match self {
            Self::File(..) => "file_sd_configs",
            Self::Http(_) => "http_sd_configs",
            Self::Dns(_) => "dns_sd_configs",
            #[cfg(feature = "kubernetes")]
            Self::Kubernetes(_) => "kubernetes_sd_configs",
        }
    }

    /// Time between refreshes.
    #[must_use]
    pub fn refresh_interval(&self) -> Duration {
        match self {
            Self::File(_, d) => *d,
            Self::Http(sd) => sd.refresh_interval(),
            Self::Dns(sd) => sd.refresh_interval(),
            #[cfg(feature = "kubernetes")]
            Self::Kubernetes(sd) => sd.refresh_interval(),
        }
    }

    /// Looks again. Returns every group when anything changed since the last `Ok(Some(_))`,
    /// `Ok(None)` when nothing did.
    ///
    /// # Errors
    /// Problems found this time; the source then keeps its last good groups
    /// ([`groups`](Self::groups)).
    pub async fn refresh(&mut self) -> Result<Option<Vec<TargetGroup>>, Vec<String>> {
        match self {
            Self::File(sd, _) => sd.refresh(),
            Self::Http(sd) => sd.refresh().await,
            Self::Dns(sd) => sd.refresh().await,
            #[cfg(feature = "kubernetes")]
            Self::Kubernetes(sd) => sd.refresh().await,
        }
    }

    /// The groups as of the last refresh.
    #[must_use]
    pub fn groups(&self) -> Vec<TargetGroup> {
        match self {
            Self::File(sd, _) => sd.groups(),
            Self::Http(sd) => sd.groups(),
            Self::Dns(sd) => sd.groups(),
            #[cfg(feature = "kubernetes")]
            Self::Kubernetes(sd) => sd.groups(),
        }
    }
}
