//! A real nats-server with JetStream on loopback for the broker-facing unit tests, killed and
//! its store removed on drop. Missing nats-server skips, unless XDPSCAN_REQUIRE_LAB=1 (CI).

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub(crate) struct TestBroker {
    pub(crate) url: String,
    child: Child,
    dir: std::path::PathBuf,
}

impl TestBroker {
    pub(crate) fn start() -> Option<Self> {
        if Command::new("nats-server")
            .arg("--version")
            .output()
            .is_err()
        {
            assert!(
                std::env::var("XDPSCAN_REQUIRE_LAB").as_deref() != Ok("1"),
                "nats-server is missing (scripts/setup.sh installs it)"
            );
            eprintln!("skipping: no nats-server");
            return None;
        }
        // A free port: bind one and let it go.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .ok()?
            .local_addr()
            .ok()?
            .port();
        let dir =
            std::env::temp_dir().join(format!("xdpscan-unit-nats-{}-{port}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).ok()?;
        let child = Command::new("nats-server")
            .args(["-js", "-a", "127.0.0.1", "-p", &port.to_string(), "-sd"])
            .arg(&dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "nats-server did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        Some(Self {
            url: format!("nats://127.0.0.1:{port}"),
            child,
            dir,
        })
    }

    pub(crate) async fn js(&self) -> async_nats::jetstream::Context {
        let c = super::broker::connect(&self.url, &Default::default())
            .await
            .expect("connect to the test broker");
        super::broker::jetstream(&c)
    }
}

impl Drop for TestBroker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
