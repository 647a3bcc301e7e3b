//! The JS action reaches an HTTP server only when the host is granted.

use crate::{support, Home};
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

/// A tiny HTTP/1.1 server on a loopback port that counts requests, and
/// really stops listening when dropped or stopped.
pub struct TestServer {
    pub port: u16,
    pub hits: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl TestServer {
    pub fn start(body: &'static str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let hits = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (counter, stopping) = (hits.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            while !stopping.load(Ordering::SeqCst) {
                let mut stream = match listener.accept() {
                    Ok((s, _)) => s,
                    Err(_) => {
                        std::thread::sleep(std::time::Duration::from_millis(5));
                        continue;
                    }
                };
                stream.set_nonblocking(false).unwrap();
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut line = String::new();
                while reader.read_line(&mut line).map(|n| n > 2).unwrap_or(false) {
                    line.clear();
                }
                counter.fetch_add(1, Ordering::SeqCst);
                let _ = write!(
                    stream,
                    "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        Self {
            port,
            hits,
            stop,
            thread: Some(thread),
        }
    }

    pub fn stop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.stop();
    }
}

#[test]
fn http_check_reaches_only_granted_hosts() {
    let wasm = support::built("actions/http.check");
    let server = TestServer::start("all systems go");
    let (port, hits) = (server.port, server.hits.clone());
    let home = Home::new();
    let url = format!("probe.url=http://127.0.0.1:{port}/healthz");
    let w = wasm.to_str().unwrap();
    let base = [
        "run",
        w,
        "-p",
        &url,
        "-p",
        "probe.method=get",
        "-p",
        "probe.expect-status=[200]",
        "-p",
        "probe.contains=go",
    ];

    let denied = home.run(&base);
    denied.code(1).stderr_has("[http-denied-or-unreachable]");
    assert_eq!(hits.load(Ordering::SeqCst), 0, "nothing reached the server");
    let rec = home.last_record();
    assert!(
        rec["logs"]
            .to_string()
            .contains(&format!("denied: net GET http://127.0.0.1:{port}/healthz")),
        "{}",
        rec["logs"]
    );

    // A grant for another port is no grant for this one.
    let mut other = base.to_vec();
    other.extend(["--allow-net", "127.0.0.1:1"]);
    home.run(&other).code(1);
    assert_eq!(hits.load(Ordering::SeqCst), 0);

    let grant = format!("127.0.0.1:{port}");
    let mut ok = base.to_vec();
    ok.extend(["--allow-net", &grant]);
    let run = home.run(&ok);
    let health = run.ok().json();
    assert_eq!(health["status"], 200);
    assert_eq!(health["healthy"], true);
    assert_eq!(health["body-bytes"], 14);
    assert_eq!(health["snippet"], "all systems go");
    assert_eq!(hits.load(Ordering::SeqCst), 1);
}

#[test]
fn a_response_body_over_the_limit_is_logged_naming_the_limit() {
    let wasm = support::built("actions/http.check");
    let body: &'static str = Box::leak("x".repeat(17 << 20).into_boxed_str());
    let server = TestServer::start(body);
    let home = Home::new();
    let url = format!("probe.url=http://127.0.0.1:{}/big", server.port);
    let grant = format!("127.0.0.1:{}", server.port);
    let run = home.run(&[
        "run",
        wasm.to_str().unwrap(),
        "-p",
        &url,
        "-p",
        "probe.method=get",
        "-p",
        "probe.expect-status=[200]",
        "--allow-net",
        &grant,
    ]);
    run.code(1);
    let logs = home.last_record()["logs"].to_string();
    assert!(
        logs.contains(&format!(
            "http: the response body of GET http://127.0.0.1:{}/big is over the limit of 16 MiB",
            server.port
        )),
        "{logs}"
    );
}
