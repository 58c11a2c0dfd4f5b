//! A real nginx (Debian's `nginx-light`) serving a directory on loopback, as a fleet server
//! would serve configuration bundles: static files with `ETag`s. It runs in the foreground
//! without a master process, with its prefix, configuration, logs and temp files in its own
//! temp directory. [`Nginx::start_with`] adds directives to the server block (`auth_basic`,
//! a bearer check, `ssl_*`), for scrape targets behind credentials or TLS.

use crate::free_port;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running (or stopped) nginx serving `root`.
#[derive(Debug)]
pub struct Nginx {
    child: Option<Child>,
    addr: String,
    dir: tempfile::TempDir,
    root: PathBuf,
    ssl: bool,
    server: String,
}

impl Nginx {
    /// Serves `root` on an ephemeral loopback port.
    ///
    /// # Panics
    /// When nginx is missing or does not start listening.
    #[must_use]
    pub fn start(root: &Path) -> Self {
        Self::start_with(root, false, "")
    }

    /// Serves `root` with `server` (nginx directives) added to the server block, listening
    /// with TLS when `ssl` (then `server` names `ssl_certificate` and its key).
    ///
    /// # Panics
    /// When nginx is missing or does not start listening.
    #[must_use]
    pub fn start_with(root: &Path, ssl: bool, server: &str) -> Self {
        let mut n = Self {
            child: None,
            addr: format!("127.0.0.1:{}", free_port()),
            dir: tempfile::tempdir().expect("temp dir"),
            root: root.to_path_buf(),
            ssl,
            server: server.into(),
        };
        n.resume();
        n
    }

    /// `http://127.0.0.1:PORT/` (`https://` when serving TLS).
    #[must_use]
    pub fn url(&self) -> String {
        let scheme = if self.ssl { "https" } else { "http" };
        format!("{scheme}://{}/", self.addr)
    }

    /// `127.0.0.1:PORT`.
    #[must_use]
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// nginx's error log so far (why it refused a request).
    #[must_use]
    pub fn error_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("error.log")).unwrap_or_default()
    }

    /// Stops serving (the port closes).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts again on the same port.
    ///
    /// # Panics
    /// When nginx does not start listening.
    pub fn resume(&mut self) {
        let bin = std::env::var("NGINX_BIN").unwrap_or_else(|_| "/usr/sbin/nginx".into());
        assert!(
            Path::new(&bin).exists(),
            "{bin} is missing: install Debian's nginx-light (ci/setup.sh does)"
        );
        let d = self.dir.path();
        let conf = d.join("nginx.conf");
        let temp = |n: &str| {
            let p = d.join(n);
            std::fs::create_dir_all(&p).expect("nginx temp dir");
            p.display().to_string()
        };
        std::fs::write(
            &conf,
            format!(
                "daemon off;\nmaster_process off;\npid {pid};\nerror_log {log} warn;\n\
                 events {{ worker_connections 256; }}\n\
                 http {{\n  access_log off;\n  client_body_temp_path {b};\n  proxy_temp_path {p};\n\
                 fastcgi_temp_path {f};\n  uwsgi_temp_path {u};\n  scgi_temp_path {s};\n\
                 types {{ application/json json; }}\n  default_type application/octet-stream;\n\
                 server {{\n    listen {addr}{ssl};\n    root {root};\n    etag on;\n{server}\n  }}\n}}\n",
                pid = d.join("nginx.pid").display(),
                log = d.join("error.log").display(),
                b = temp("body"),
                p = temp("proxy"),
                f = temp("fastcgi"),
                u = temp("uwsgi"),
                s = temp("scgi"),
                addr = self.addr,
                root = self.root.display(),
                ssl = if self.ssl { " ssl" } else { "" },
                server = self.server,
            ),
        )
        .expect("write nginx.conf");
        let child = Command::new(bin)
            .arg("-p")
            .arg(d)
            .arg("-c")
            .arg(&conf)
            .arg("-e")
            .arg(d.join("error.log"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start nginx");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(&self.addr).is_err() {
            assert!(
                Instant::now() < deadline,
                "nginx did not start listening on {}; error log: {}",
                self.addr,
                std::fs::read_to_string(d.join("error.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        self.stop();
    }
}
