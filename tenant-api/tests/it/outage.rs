//! Database outages (issue 10): while PostgreSQL cannot be reached, requests are answered
//! 503 with Retry-After after a short wait (not 500 after ten seconds), and the server
//! recovers by itself once the database is back. The outage is real from the server's
//! side: its connections go through a TCP proxy that this test cuts and restores.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use tokio::net::{TcpListener, TcpStream};

use crate::common::{TestApp, database_url, phone};

struct Proxy {
    addr: SocketAddr,
    up: Arc<AtomicBool>,
    links: Arc<Mutex<Vec<tokio::task::AbortHandle>>>,
}

impl Proxy {
    async fn start(target: String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let up = Arc::new(AtomicBool::new(true));
        let links: Arc<Mutex<Vec<tokio::task::AbortHandle>>> = Arc::default();
        let (up2, links2) = (up.clone(), links.clone());
        tokio::spawn(async move {
            loop {
                let Ok((mut client, _)) = listener.accept().await else { continue };
                if !up2.load(Ordering::SeqCst) {
                    drop(client); // refused: the database is "down"
                    continue;
                }
                let target = target.clone();
                let link = tokio::spawn(async move {
                    if let Ok(mut server) = TcpStream::connect(&target).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
                links2.lock().unwrap().push(link.abort_handle());
            }
        });
        Self { addr, up, links }
    }

    /// Cuts every open connection and refuses new ones.
    fn down(&self) {
        self.up.store(false, Ordering::SeqCst);
        for l in self.links.lock().unwrap().drain(..) {
            l.abort();
        }
    }

    fn up(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

/// DATABASE_URL split around its host:port.
fn database_url_parts() -> (String, String, String) {
    let url = database_url();
    let (scheme, rest) = url.split_once("://").unwrap();
    let (auth, rest) = rest.rsplit_once('@').map(|(a, r)| (format!("{a}@"), r)).unwrap_or((String::new(), rest));
    let (host_port, path) = rest.split_once('/').unwrap_or((rest, ""));
    (format!("{scheme}://{auth}"), host_port.to_string(), format!("/{path}"))
}

#[tokio::test]
async fn an_outage_answers_503_quickly_and_the_server_recovers_by_itself() {
    let (before, target, after) = database_url_parts();
    let proxy = Proxy::start(target).await;
    let url = format!("{before}{}{after}", proxy.addr);
    let app = TestApp::spawn_through(&url).await;
    let t = app.tenant().await;
    let (_, pair) = app.member(&t, &phone()).await;
    let token = pair["access_token"].as_str().unwrap().to_string();
    let me = format!("/v1/tenants/{}/me", t.slug);
    assert_eq!(app.call(Method::GET, &me, Some(&token), None).await.0, StatusCode::OK);

    proxy.down();
    for _ in 0..3 {
        let started = Instant::now();
        let (s, headers, b) =
            app.call_full(Method::GET, &me, &[("authorization", format!("Bearer {token}"))], None).await;
        let waited = started.elapsed();
        assert_eq!(
            (s, b["error"]["code"].as_str()),
            (StatusCode::SERVICE_UNAVAILABLE, Some("database_unavailable")),
            "{b}"
        );
        assert!(headers.get("retry-after").is_some());
        assert!(waited < Duration::from_secs(6), "answered after {waited:?}");
        eprintln!("outage: 503 after {waited:?}");
    }

    proxy.up();
    let back = Instant::now();
    loop {
        let (s, b) = app.call(Method::GET, &me, Some(&token), None).await;
        if s == StatusCode::OK {
            break;
        }
        assert!(back.elapsed() < Duration::from_secs(15), "not recovered: {s} {b}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    eprintln!("outage: recovered {:?} after the database came back", back.elapsed());
    // Once back, every request succeeds: no stale connection is handed out.
    for _ in 0..30 {
        assert_eq!(app.call(Method::GET, &me, Some(&token), None).await.0, StatusCode::OK);
    }
}
