//! Memory stays bounded under password hashing (issue 10): the real server binary, 200
//! concurrent registrations and 40 concurrent logins (argon2id, 19 MiB each). Hashing
//! runs one per core, and the allocator (mimalloc) gives the memory back: resident size
//! stays under 300 MiB and returns near idle afterwards.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::json;

use crate::common::{PASSWORD, TestApp, database_url, phone, unique};

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0.0);
    kib / 1024.0
}

#[tokio::test]
async fn password_hashing_keeps_resident_memory_bounded() {
    let app = TestApp::spawn().await;
    let t = app.tenant().await;
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let files = std::env::temp_dir().join(unique("pointsmall-mem"));
    let server = Server(
        Command::new(env!("CARGO_BIN_EXE_pointsmall"))
            .args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--jobs-interval-secs", "3600"])
            .env("DATABASE_URL", database_url())
            .env("POINTSMALL_JWT_SECRET", unique("memory-test-secret-memory-test-secret"))
            .env("POINTSMALL_FILES_DIR", &files)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let pid = server.0.id();
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let started = Instant::now();
    while client.get(format!("{base}/healthz")).send().await.is_err() {
        assert!(started.elapsed() < Duration::from_secs(30), "the server did not start");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let register = format!("{base}/v1/tenants/{}/auth/register", t.slug);
    let one = client.post(&register).json(&json!({"identifier": phone(), "password": PASSWORD})).send().await.unwrap();
    assert_eq!(one.status(), StatusCode::CREATED);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let idle = rss_mib(pid);

    // Sample the resident size while the burst runs.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sampling = {
        let stop = stop.clone();
        tokio::spawn(async move {
            let mut peak: f64 = 0.0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                peak = peak.max(rss_mib(pid));
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            peak
        })
    };
    let phones: Vec<String> = (0..200).map(|_| phone()).collect();
    let burst = phones.iter().map(|p| {
        let (client, register, p) = (client.clone(), register.clone(), p.clone());
        tokio::spawn(async move {
            client.post(&register).json(&json!({"identifier": p, "password": PASSWORD})).send().await.unwrap().status()
        })
    });
    let statuses: Vec<StatusCode> = futures::future::join_all(burst).await.into_iter().map(|r| r.unwrap()).collect();
    // Excess requests wait for a hashing slot (or, past the wait, are told to retry).
    assert!(statuses.iter().all(|s| *s == StatusCode::CREATED || *s == StatusCode::TOO_MANY_REQUESTS), "{statuses:?}");
    let created = statuses.iter().filter(|s| **s == StatusCode::CREATED).count();
    let login = format!("{base}/v1/tenants/{}/auth/login", t.slug);
    // Logins with the right password: a success gives the client address its attempt
    // back (the binary's throttle counters are shared with every other test of the run).
    let members: Vec<&String> =
        phones.iter().zip(&statuses).filter(|(_, s)| **s == StatusCode::CREATED).map(|(p, _)| p).take(40).collect();
    let logins = members.into_iter().map(|p| {
        let (client, login, p) = (client.clone(), login.clone(), p.clone());
        tokio::spawn(async move {
            client.post(&login).json(&json!({"identifier": p, "password": PASSWORD})).send().await.unwrap().status()
        })
    });
    futures::future::join_all(logins).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let peak = sampling.await.unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let settled = rss_mib(pid);
    eprintln!(
        "memory: idle {idle:.1} MiB, peak {peak:.1} MiB during 200 concurrent registrations ({created} created) \
         and 40 logins, {settled:.1} MiB 3 s later"
    );
    assert!(peak < 300.0, "resident {peak:.1} MiB");
    assert!(settled < idle + 60.0, "idle {idle:.1} MiB, settled {settled:.1} MiB");
}
