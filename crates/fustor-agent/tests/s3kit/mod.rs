//! A real S3-compatible server for tests and benches: `moto_server` (PyPI `moto[server]`,
//! installed by `.ci/run`) on a free 127.0.0.1 port, killed on drop; and a real S3 client
//! (object_store) to create, overwrite and delete objects in it.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use object_store::aws::AmazonS3Builder;
use object_store::path::Path as KeyPath;
use object_store::{ObjectStore, PutPayload};

pub const KEY_ID: &str = "testing";
pub const SECRET: &str = "testing-secret";

pub struct Moto {
    child: Child,
    pub port: u16,
}

/// Whether `moto_server` can run here.
pub fn moto_available() -> bool {
    Command::new("moto_server")
        .arg("--help")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// `None` (with the reason printed) when moto is absent outside CI; under `CI=true` its
/// absence fails the test.
pub fn moto_or_skip(test: &str) -> bool {
    if moto_available() {
        return true;
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{test}: moto_server is required in CI (pip install 'moto[server]')");
    }
    eprintln!("SKIP {test}: moto_server not installed (python3 -m pip install 'moto[server]')");
    false
}

impl Moto {
    /// On `port`; `auth` makes moto check signatures against its IAM users, so unknown keys
    /// are refused (`InvalidAccessKeyId`) as by a real S3.
    pub fn start_on(port: u16, auth: bool) -> Moto {
        let mut cmd = Command::new("moto_server");
        cmd.args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if auth {
            cmd.env("INITIAL_NO_AUTH_ACTION_COUNT", "0");
        }
        let child = cmd.spawn().expect("moto_server starts");
        assert!(
            fustor_testkit::wait_for_port(port, Duration::from_secs(30)),
            "moto_server did not listen on {port}"
        );
        Moto { child, port }
    }

    pub fn start() -> Moto {
        Moto::start_on(fustor_testkit::free_port(), false)
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// CreateBucket (object_store has no call for it); moto takes it unsigned.
    pub fn create_bucket(&self, name: &str) {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        write!(
            s,
            "PUT /{name} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            self.port
        )
        .unwrap();
        let mut resp = String::new();
        let _ = s.read_to_string(&mut resp);
        assert!(resp.starts_with("HTTP/1.1 200"), "CreateBucket: {resp}");
    }

    pub fn bucket(&self, name: &str) -> Bucket {
        Bucket::new(&self.endpoint(), name)
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A signed S3 client on one bucket.
pub struct Bucket {
    rt: tokio::runtime::Runtime,
    store: Arc<dyn ObjectStore>,
}

impl Bucket {
    pub fn new(endpoint: &str, bucket: &str) -> Bucket {
        let store = AmazonS3Builder::new()
            .with_endpoint(endpoint)
            .with_allow_http(true)
            .with_bucket_name(bucket)
            .with_region("us-east-1")
            .with_access_key_id(KEY_ID)
            .with_secret_access_key(SECRET)
            .build()
            .unwrap();
        Bucket {
            rt: tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap(),
            store: Arc::new(store),
        }
    }

    pub fn put(&self, key: &str, body: &[u8]) {
        let payload = PutPayload::from(body.to_vec());
        self.rt
            .block_on(self.store.put(&KeyPath::from(key), payload))
            .unwrap();
    }

    pub fn delete(&self, key: &str) {
        self.rt
            .block_on(self.store.delete(&KeyPath::from(key)))
            .unwrap();
    }

    /// Many small objects, `parallel` requests at a time.
    pub fn put_many(&self, keys: Vec<String>, parallel: usize) {
        let store = self.store.clone();
        self.rt.block_on(async move {
            let results: Vec<_> = futures_util::stream::iter(keys)
                .map(|k| {
                    let store = store.clone();
                    async move {
                        store
                            .put(&KeyPath::from(k.as_str()), PutPayload::from_static(b"x"))
                            .await
                    }
                })
                .buffer_unordered(parallel)
                .collect()
                .await;
            for r in results {
                r.unwrap();
            }
        });
    }
}

/// An agent configuration with one s3 source.
pub fn agent_yaml(
    agent_id: &str,
    endpoint: &str,
    bucket: &str,
    prefix: &str,
    recv_url: &str,
    credential: (&str, &str),
) -> String {
    format!(
        "agent_id: {agent_id}\nsources:\n  bucket:\n    driver: s3\n    uri: {endpoint:?}\n    credential: {{user: {u}, passwd: {p}}}\n    driver_params: {{bucket: {bucket}, prefix: {prefix:?}, region: us-east-1, poll_interval_sec: 0.5}}\n\
         senders:\n  fusion:\n    driver: fusion\n    uri: {recv_url:?}\n    credential: {{key: agent-key}}\n\
         pipes:\n  v1:\n    source: bucket\n    sender: fusion\n    error_retry_interval: 0.5\n    max_backoff_seconds: 2\n",
        u = credential.0,
        p = credential.1,
    )
}

impl Bucket {
    /// Keys listed (paginated) and the seconds it took: the server's own listing pace.
    pub fn count(&self, prefix: Option<&str>) -> (usize, f64) {
        let started = std::time::Instant::now();
        let prefix = prefix.map(KeyPath::from);
        let n = self.rt.block_on(async {
            let mut s = self.store.list(prefix.as_ref());
            let mut n = 0;
            while let Some(m) = s.next().await {
                m.unwrap();
                n += 1;
            }
            n
        });
        (n, started.elapsed().as_secs_f64())
    }
}
