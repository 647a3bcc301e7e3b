//! The JS action reaches an HTTP server only when the host is granted.

use crate::{support, Home};
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// A tiny HTTP/1.1 server on a loopback port that counts requests.
fn serve(body: &'static str) -> (u16, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
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
    (port, hits)
}

#[test]
fn http_check_reaches_only_granted_hosts() {
    let wasm = support::built("actions/http.check");
    let (port, hits) = serve("all systems go");
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
