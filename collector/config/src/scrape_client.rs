//! A scrape job's HTTP client settings: the credentials and TLS material its targets are
//! scraped with, under the same keys as `[[export]]` (`basic_auth`, `bearer_token_file`,
//! `tls`). Secrets are read from files only, so they never sit in the configuration; the
//! collector attaches them to the plugin's requests, so the plugin never sees them.

use super::{Scrape, Tls};
use magpie_transport::{Auth, TlsOptions};

impl Scrape {
    /// The credentials sent to every target, read from their files now (so a reload picks
    /// up a rotated secret).
    ///
    /// # Errors
    /// An unreadable or empty secret file, named in the error.
    pub fn auth(&self) -> Result<Auth, magpie_transport::Error> {
        match (&self.basic_auth, &self.bearer_token_file) {
            (Some(b), _) => Auth::basic(&b.username, &b.password_file),
            (None, Some(f)) => Auth::bearer(f),
            (None, None) => Ok(Auth::None),
        }
    }

    /// The TLS settings targets are scraped with (the system's roots when unset).
    #[must_use]
    pub fn tls_options(&self) -> TlsOptions {
        Tls::options(self.tls.as_ref())
    }

    /// Whether the job needs a client of its own: credentials or TLS settings.
    #[must_use]
    pub const fn has_client_settings(&self) -> bool {
        self.basic_auth.is_some() || self.bearer_token_file.is_some() || self.tls.is_some()
    }

    /// What is wrong with the settings as written (files are read later, by `auth` and the
    /// TLS set-up).
    pub(crate) fn client_problems(&self) -> Vec<String> {
        let job = self.job.get_ref();
        let mut out = Vec::new();
        if self.basic_auth.is_some() && self.bearer_token_file.is_some() {
            out.push(format!(
                "scrape job `{job}`: basic_auth and bearer_token_file are exclusive"
            ));
        }
        if let Some(t) = &self.tls
            && t.cert_file.is_some() != t.key_file.is_some()
        {
            out.push(format!(
                "scrape job `{job}`: tls needs both cert_file and key_file, or neither"
            ));
        }
        out.extend(Tls::server_name_problem(
            self.tls.as_ref(),
            &format!("scrape job `{job}`"),
            false,
        ));
        out
    }
}
