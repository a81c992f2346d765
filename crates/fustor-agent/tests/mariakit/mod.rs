//! A real MariaDB for tests and benches: `mariadb-install-db` into a temp datadir, then
//! `mariadbd` on a free 127.0.0.1 port with the row-based binlog on (`.ci/run` installs
//! `mariadb-server`); killed on drop. SQL goes through the `mariadb` client on the socket.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const USER: &str = "fustor";
pub const PASS: &str = "fustor-pw";

pub struct Maria {
    child: Option<Child>,
    pub port: u16,
    pub dir: PathBuf,
    _tmp: tempfile::TempDir,
}

fn have(bin: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {bin}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// False (reason printed) when MariaDB is absent outside CI; under `CI=true` absence fails.
pub fn maria_or_skip(test: &str) -> bool {
    if have("mariadbd") && have("mariadb-install-db") && have("mariadb") {
        return true;
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{test}: mariadb-server is required in CI (apt-get install mariadb-server)");
    }
    eprintln!("SKIP {test}: mariadbd not installed (apt-get install mariadb-server)");
    false
}

fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

impl Maria {
    pub fn start() -> Maria {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().to_path_buf();
        let data = dir.join("data");
        std::fs::create_dir_all(&data).unwrap();
        if is_root() {
            // mariadbd will not run as root: the datadir belongs to `mysql`.
            Command::new("chmod").arg("755").arg(&dir).status().unwrap();
            Command::new("chown")
                .args(["-R", "mysql:mysql"])
                .arg(&dir)
                .status()
                .unwrap();
        }
        let mut install = Command::new("mariadb-install-db");
        install
            .arg("--no-defaults")
            .arg(format!("--datadir={}", data.display()))
            .arg("--auth-root-authentication-method=normal")
            .arg("--skip-test-db")
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if is_root() {
            install.arg("--user=mysql");
        }
        assert!(
            install.status().unwrap().success(),
            "mariadb-install-db failed"
        );
        let mut m = Maria {
            child: None,
            port: fustor_testkit::free_port(),
            dir,
            _tmp: tmp,
        };
        m.boot();
        m.sql(&format!(
            "CREATE USER '{USER}'@'%' IDENTIFIED BY '{PASS}'; GRANT ALL ON *.* TO '{USER}'@'%';"
        ));
        m
    }

    /// Starts the server again after [`Maria::shutdown`] (same data, same port).
    pub fn boot(&mut self) {
        let mut cmd = Command::new("mariadbd");
        cmd.arg("--no-defaults")
            .arg(format!("--datadir={}", self.dir.join("data").display()))
            .arg(format!("--socket={}", self.socket().display()))
            .arg(format!(
                "--pid-file={}",
                self.dir.join("mariadb.pid").display()
            ))
            .arg(format!(
                "--log-bin={}",
                self.dir.join("data/binlog").display()
            ))
            .arg(format!("--port={}", self.port))
            .args([
                "--bind-address=127.0.0.1",
                "--binlog-format=ROW",
                "--server-id=1",
                "--skip-name-resolve",
                "--innodb-buffer-pool-size=32M",
                "--innodb-log-file-size=16M",
                "--innodb-flush-log-at-trx-commit=2",
            ])
            .stdout(Stdio::null())
            .stderr(
                std::fs::File::create(self.dir.join("mariadbd.err"))
                    .map(Stdio::from)
                    .unwrap_or(Stdio::null()),
            );
        if is_root() {
            cmd.arg("--user=mysql");
        }
        self.child = Some(cmd.spawn().unwrap());
        let deadline = Instant::now() + Duration::from_secs(60);
        while !self.socket().exists() || !fustor_testkit::wait_for_port(self.port, Duration::ZERO) {
            assert!(
                Instant::now() < deadline,
                "mariadbd did not start: {}",
                std::fs::read_to_string(self.dir.join("mariadbd.err")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn socket(&self) -> PathBuf {
        self.dir.join("mariadb.sock")
    }

    /// Runs SQL as root on the socket; returns stdout (tab-separated, no headers).
    pub fn sql(&self, sql: &str) -> String {
        let out = Command::new("mariadb")
            .arg("--no-defaults")
            .arg(format!("--socket={}", self.socket().display()))
            .args(["-uroot", "-N", "-B", "-e", sql])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "SQL failed: {sql}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn uri(&self, db: &str) -> String {
        format!("mysql://127.0.0.1:{}/{db}", self.port)
    }

    /// Stops the server (its data stays; [`Maria::boot`] starts it again).
    pub fn shutdown(&mut self) {
        if let Some(mut c) = self.child.take() {
            fustor_testkit::terminate(&mut c, Duration::from_secs(20));
        }
    }

    /// Like [`Maria::sql`], without failing the test on an SQL error.
    fn try_sql(&self, sql: &str) -> bool {
        Command::new("mariadb")
            .arg("--no-defaults")
            .arg(format!("--socket={}", self.socket().display()))
            .args(["-uroot", "-N", "-B", "-e", sql])
            .output()
            .is_ok_and(|o| o.status.success())
    }

    /// Rotates the binlog and purges every older file, `file` included. A file that a replica
    /// connection reads is kept by the server (even a dead agent's, until the server notices),
    /// so the replica connections are killed first and the purge is repeated until `file` is
    /// really gone: a purge that silently kept it would test nothing.
    pub fn purge_binlogs_through(&self, file: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let dumps = self.sql(
                "SELECT ID FROM information_schema.PROCESSLIST WHERE COMMAND LIKE 'Binlog Dump%'",
            );
            for id in dumps.split_whitespace() {
                self.try_sql(&format!("KILL {id}"));
            }
            self.sql("FLUSH BINARY LOGS");
            let current = self.current_binlog();
            self.try_sql(&format!("PURGE BINARY LOGS TO '{current}'"));
            let logs = self.sql("SHOW BINARY LOGS");
            if !logs.lines().any(|l| l.split('\t').next() == Some(file)) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "binlog {file} still listed after purges: {logs}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The binlog file being written.
    pub fn current_binlog(&self) -> String {
        self.sql("SHOW MASTER STATUS")
            .split('\t')
            .next()
            .unwrap_or_default()
            .to_string()
    }
}

impl Drop for Maria {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            fustor_testkit::terminate(&mut c, Duration::from_secs(20));
        }
    }
}

/// An agent configuration with one mysql source on `cat.datasets`.
pub fn agent_yaml(agent_id: &str, uri: &str, recv_url: &str, page_size: u64) -> String {
    format!(
        "agent_id: {agent_id}\nsources:\n  catalogue:\n    driver: mysql\n    uri: {uri:?}\n    credential: {{user: {USER}, passwd: {PASS}}}\n    driver_params:\n      table: datasets\n      key_column: id\n      page_size: {page_size}\n      fields_mapping: {{path: path, size: bytes, modified_time: mtime}}\n\
         senders:\n  fusion:\n    driver: fusion\n    uri: {recv_url:?}\n    credential: {{key: agent-key}}\n\
         pipes:\n  v1:\n    source: catalogue\n    sender: fusion\n    error_retry_interval: 0.5\n    max_backoff_seconds: 2\n"
    )
}

/// The saved binlog positions. Only `*.json`: the `*.json.tmp` of a save in progress is not a
/// saved position (counting it let the test kill the agent before the rename, so the next
/// start read the older, clean position and snapshotted without "needed_position_lost").
pub fn state_files(agent_home: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(agent_home.join("agent-state"))
        .map(|d| {
            d.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| {
                    p.to_string_lossy().contains("mysql-")
                        && p.extension().is_some_and(|x| x == "json")
                })
                .collect()
        })
        .unwrap_or_default()
}
