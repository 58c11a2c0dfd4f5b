//! A real Mosquitto broker (Debian's `mosquitto` package) on a loopback port, with an optional
//! password file and TLS listener, and a `mosquitto_sub` subscriber whose messages tests read.
//!
//! The broker persists its state in its temp directory, so a subscriber with a persistent
//! session keeps receiving what was acknowledged to a publisher across [`Mosquitto::stop`] and
//! [`Mosquitto::resume`].

use crate::free_port;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How to start a broker.
#[derive(Debug, Default, Clone)]
pub struct MosquittoOptions {
    /// Require this user name and password (no anonymous access).
    pub user: Option<(String, String)>,
    /// Listen with TLS, with a self-signed certificate for `127.0.0.1` made by `openssl`.
    pub tls: bool,
    /// Turn Nagle's algorithm off for the broker's sockets (`set_tcp_nodelay`; off by
    /// default in Mosquitto, which then holds back PUBACKs behind the client's delayed ACKs).
    pub tcp_nodelay: bool,
}

/// A running (or stopped) broker with its own directory.
#[derive(Debug)]
pub struct Mosquitto {
    child: Option<Child>,
    port: u16,
    tls: bool,
    dir: tempfile::TempDir,
}

fn run(cmd: &mut Command) {
    let out = cmd.output().expect("running a helper command");
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Writes a CA, and a server certificate for 127.0.0.1 signed by it, into `dir`.
fn make_certs(dir: &Path) {
    let p = |n: &str| dir.join(n).display().to_string();
    run(Command::new("openssl").args([
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=magpie test CA",
        "-keyout",
        &p("ca.key"),
        "-out",
        &p("ca.pem"),
    ]));
    run(Command::new("openssl").args([
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=127.0.0.1",
        "-keyout",
        &p("server.key"),
        "-out",
        &p("server.csr"),
    ]));
    std::fs::write(
        dir.join("san.ext"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\n",
    )
    .expect("write san.ext");
    run(Command::new("openssl").args([
        "x509",
        "-req",
        "-in",
        &p("server.csr"),
        "-CA",
        &p("ca.pem"),
        "-CAkey",
        &p("ca.key"),
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        &p("san.ext"),
        "-out",
        &p("server.pem"),
    ]));
}

impl Mosquitto {
    /// Starts an anonymous plain-TCP broker on an ephemeral loopback port.
    ///
    /// # Panics
    /// When `mosquitto` is missing or does not listen.
    #[must_use]
    pub fn start() -> Self {
        Self::start_with(&MosquittoOptions::default())
    }

    /// Starts a broker with these options on an ephemeral loopback port.
    ///
    /// # Panics
    /// When `mosquitto`, `mosquitto_passwd` or `openssl` is missing, or the broker does not
    /// listen.
    #[must_use]
    pub fn start_with(opts: &MosquittoOptions) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let port = free_port();
        // Run as whoever runs the tests: as root mosquitto would switch to user `mosquitto`,
        // which cannot read the temp directory.
        let me = Command::new("id")
            .arg("-un")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .map_or_else(|| "root".to_string(), |s| s.trim().to_string());
        let mut conf = format!(
            "user {me}\nlistener {port} 127.0.0.1\npersistence true\npersistence_location {}/\nautosave_interval 1\nlog_dest file {}\nlog_type error\nlog_type warning\nlog_type notice\nmax_queued_messages 100000\n",
            dir.path().display(),
            dir.path().join("mosquitto.log").display(),
        );
        match &opts.user {
            Some((user, pass)) => {
                let pw = dir.path().join("passwd");
                std::fs::write(&pw, "").expect("write passwd");
                run(Command::new("mosquitto_passwd")
                    .arg("-b")
                    .arg(&pw)
                    .args([user, pass]));
                conf.push_str(&format!(
                    "allow_anonymous false\npassword_file {}\n",
                    pw.display()
                ));
            }
            None => conf.push_str("allow_anonymous true\n"),
        }
        if opts.tcp_nodelay {
            conf.push_str("set_tcp_nodelay true\n");
        }
        if opts.tls {
            make_certs(dir.path());
            let p = |n: &str| dir.path().join(n).display().to_string();
            conf.push_str(&format!(
                "certfile {}\nkeyfile {}\n",
                p("server.pem"),
                p("server.key")
            ));
        }
        std::fs::write(dir.path().join("mosquitto.conf"), conf).expect("write mosquitto.conf");
        let mut m = Self {
            child: None,
            port,
            tls: opts.tls,
            dir,
        };
        m.resume();
        m
    }

    fn bin() -> String {
        let bin = std::env::var("MOSQUITTO_BIN").unwrap_or_else(|_| "/usr/sbin/mosquitto".into());
        assert!(
            Path::new(&bin).exists(),
            "{bin} is missing: install Debian's mosquitto and mosquitto-clients (ci/setup.sh does)"
        );
        bin
    }

    /// The loopback port, the same across restarts.
    #[must_use]
    pub const fn port(&self) -> u16 {
        self.port
    }

    /// `mqtt://127.0.0.1:PORT`, or `mqtts://…` for a TLS broker.
    #[must_use]
    pub fn url(&self) -> String {
        let scheme = if self.tls { "mqtts" } else { "mqtt" };
        format!("{scheme}://127.0.0.1:{}", self.port)
    }

    /// The CA that signed a TLS broker's certificate.
    #[must_use]
    pub fn ca_file(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// The broker's log so far.
    #[must_use]
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("mosquitto.log")).unwrap_or_default()
    }

    /// Stops it with SIGTERM (it saves its persistent state) and waits.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(c.id().to_string())
                .status();
            let deadline = Instant::now() + Duration::from_secs(10);
            while c.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts it again on the same port with the same state.
    ///
    /// # Panics
    /// When it does not listen within 10 s.
    pub fn resume(&mut self) {
        let child = Command::new(Self::bin())
            .arg("-c")
            .arg(self.dir.path().join("mosquitto.conf"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start mosquitto");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            if let Some(c) = &mut self.child
                && let Ok(Some(status)) = c.try_wait()
            {
                panic!("mosquitto exited with {status}: {}", self.log());
            }
            assert!(
                Instant::now() < deadline,
                "mosquitto did not listen on {}",
                self.port
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Subscribes to `filter` at QoS 1 with a persistent session named `id`, so messages
    /// published while it is away (a broker restart) are kept for it.
    ///
    /// # Panics
    /// When `mosquitto_sub` cannot start.
    #[must_use]
    pub fn subscribe(&self, filter: &str, id: &str, user: Option<(&str, &str)>) -> Subscriber {
        let out = self.dir.path().join(format!("sub-{id}.txt"));
        let file = std::fs::File::create(&out).expect("create subscriber output");
        let mut cmd = Command::new("mosquitto_sub");
        cmd.args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args(["-t", filter, "-q", "1", "-c", "-i", id])
            .args(["-F", "%t %r %x"]);
        if self.tls {
            cmd.arg("--cafile").arg(self.ca_file());
        }
        if let Some((u, p)) = user {
            cmd.args(["-u", u, "-P", p]);
        }
        let child = cmd
            .stdout(file)
            .stderr(Stdio::null())
            .spawn()
            .expect("start mosquitto_sub (package mosquitto-clients)");
        // The subscription must be in place before anything is published: wait for the broker
        // to log the client, then for the SUBSCRIBE that follows its CONNACK.
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.log().contains(&format!(" as {id} ")) {
            assert!(
                Instant::now() < deadline,
                "mosquitto_sub `{id}` did not connect: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        std::thread::sleep(Duration::from_millis(200));
        Subscriber { child, out }
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// One received message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Its topic.
    pub topic: String,
    /// Whether the broker sent it as a retained message.
    pub retained: bool,
    /// Its payload.
    pub payload: Vec<u8>,
}

/// A running `mosquitto_sub`.
#[derive(Debug)]
pub struct Subscriber {
    child: Child,
    out: PathBuf,
}

impl Subscriber {
    /// Every message received so far, in arrival order.
    #[must_use]
    pub fn messages(&self) -> Vec<Message> {
        let text = std::fs::read_to_string(&self.out).unwrap_or_default();
        text.lines()
            .filter_map(|l| {
                let mut parts = l.splitn(3, ' ');
                let topic = parts.next()?.to_string();
                let retained = parts.next()? == "1";
                let hex = parts.next().unwrap_or("");
                let payload = (0..hex.len() / 2)
                    .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok())
                    .collect::<Option<Vec<u8>>>()?;
                Some(Message {
                    topic,
                    retained,
                    payload,
                })
            })
            .collect()
    }
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
