//! Raw sockets (`wasi:sockets`) are recorded like HTTP: the name lookup,
//! the TCP connect and every read, each UDP send and receive; a replay
//! plays them back without touching the network, and another build that
//! connects or sends elsewhere diverges there.

use crate::{s, support, Home};
use serde_json::Value;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, UdpSocket};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// A service on a loopback port that answers `reply`: over TCP it reads
/// one line, answers and closes; over UDP it answers each datagram.
/// Counts what it was asked (connections, datagrams); `reply` can be
/// changed while it runs. Its thread ends with the test process.
struct StateService {
    port: u16,
    asked: Arc<AtomicUsize>,
    reply: Arc<Mutex<Vec<u8>>>,
}

impl StateService {
    fn tcp(reply: &[u8]) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        Self::serve(port, reply, move |answer| {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let mut line = String::new();
                let _ = BufReader::new(&stream).read_line(&mut line);
                let _ = stream.write_all(&answer());
            }
        })
    }

    fn udp(reply: &[u8]) -> Self {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = socket.local_addr().unwrap().port();
        Self::serve(port, reply, move |answer| {
            let mut buf = [0; 1500];
            while let Ok((_, from)) = socket.recv_from(&mut buf) {
                let _ = socket.send_to(&answer(), from);
            }
        })
    }

    /// Run `serve` on a thread; each call of the `answer` it is given
    /// counts one question and returns the current reply.
    fn serve(
        port: u16,
        reply: &[u8],
        serve: impl FnOnce(&dyn Fn() -> Vec<u8>) + Send + 'static,
    ) -> Self {
        let asked = Arc::new(AtomicUsize::new(0));
        let reply = Arc::new(Mutex::new(reply.to_vec()));
        let (count, current) = (asked.clone(), reply.clone());
        std::thread::spawn(move || {
            serve(&|| {
                count.fetch_add(1, Ordering::SeqCst);
                current.lock().unwrap().clone()
            })
        });
        Self { port, asked, reply }
    }

    fn answer(&self, reply: &[u8]) {
        *self.reply.lock().unwrap() = reply.to_vec();
    }

    fn asked(&self) -> usize {
        self.asked.load(Ordering::SeqCst)
    }
}

fn fixture(name: &str) -> PathBuf {
    support::built("tests/fixtures/sockets").with_file_name(format!("{name}.wasm"))
}

/// `wasmflow run` of the fixture `wasm` against `service`, by host name
/// (so the lookup is recorded too), granted that host and port only.
fn probe(service: &StateService, wasm: &str, extra: &[&str]) -> Vec<String> {
    let port = service.port;
    let mut args = vec![
        "run".to_owned(),
        s(&fixture(wasm)).to_owned(),
        "-p".into(),
        "probe.host=localhost".into(),
        "-p".into(),
        format!("probe.port={port}"),
        "--allow-net".into(),
        format!("localhost:{port}"),
    ];
    args.extend(extra.iter().map(|a| a.to_string()));
    args
}

fn run(home: &Home, args: &[String]) -> crate::Run {
    home.run(&args.iter().map(String::as_str).collect::<Vec<_>>())
}

/// Run the fixture over TCP, reading `chunk` bytes at a time; it fails
/// unless the service says `state: ok`.
fn run_tcp(home: &Home, service: &StateService, chunk: u32) -> Value {
    let chunk = format!("probe.chunk={chunk}");
    run(home, &probe(service, "sockets", &["-p", &chunk]))
        .code(1)
        .stderr_has("[unhealthy]");
    home.last_record()
}

fn events(home: &Home, id: &str) -> Vec<Value> {
    let bundle: Value = home.run(&["execution", "export", id]).json();
    bundle["events"].as_array().unwrap().clone()
}

#[test]
fn tcp_replay_reproduces_the_error_without_the_network() {
    let home = Home::new();
    let service = StateService::tcp(b"state: degraded\nreplica lag 40 s\n");
    let original = run_tcp(&home, &service, 16);
    let id = original["id"].as_str().unwrap();
    assert_eq!(service.asked(), 1);
    let message = original["error"]["message"].as_str().unwrap();
    assert_eq!(
        message,
        format!(
            "localhost (127.0.0.1:{}) said 'state: degraded' (33 bytes)",
            service.port
        )
    );

    // What was recorded: the lookup, the connect, the reads (33 bytes in
    // reads of at most 16, then the end of the stream).
    let events = events(&home, id);
    let kinds: Vec<&str> = events.iter().map(|e| e["kind"].as_str().unwrap()).collect();
    let lookup = events.iter().find(|e| e["kind"] == "name-lookup").unwrap();
    assert_eq!(lookup["name"], "localhost");
    assert!(lookup["outcome"]["addresses"]
        .as_array()
        .unwrap()
        .contains(&Value::from("127.0.0.1")));
    assert!(kinds.contains(&"tcp-connect"));
    let reads: Vec<&Value> = events.iter().filter(|e| e["kind"] == "tcp-read").collect();
    assert!(reads.len() >= 4, "{events:#?}");
    assert_eq!(reads.last().unwrap()["outcome"], "closed");

    // The service now says all is well, and a replay still gets the
    // recorded answer: it never connects.
    service.answer(b"state: ok\n");
    let replay = home.run(&["execution", "replay", id]);
    replay.ok();
    assert_eq!(replay.stdout.trim(), "reproduced: identical error");
    assert_eq!(service.asked(), 1);
    let rec = home.last_record();
    assert_eq!(rec["replay_of"], id);
    assert_eq!(rec["error"]["message"], message);

    // Live, the same run now passes: the world did change.
    run(&home, &probe(&service, "sockets", &[])).ok();
    assert_eq!(service.asked(), 2);
}

#[test]
fn a_build_that_connects_elsewhere_diverges_at_the_connect_naming_both() {
    let home = Home::new();
    let service = StateService::tcp(b"state: degraded\n");
    let original = run_tcp(&home, &service, 16);
    let id = original["id"].as_str().unwrap();
    let connect = events(&home, id)
        .iter()
        .position(|e| e["kind"] == "tcp-connect")
        .unwrap()
        + 1;

    let other = fixture("sockets-other-port");
    let replay = home.run(&["execution", "replay", id, "--component", s(&other)]);
    replay.code(1);
    let port = service.port;
    assert_eq!(
        replay.stdout.trim(),
        format!(
            "diverged at event {connect}: guest asked TCP connect 127.0.0.1:{}, \
             recorded TCP connect 127.0.0.1:{port}",
            port + 1
        )
    );
    assert_eq!(service.asked(), 1);
}

#[test]
fn large_reads_travel_as_blobs_in_a_bundle_to_a_fresh_home() {
    let home = Home::new();
    // 200 KiB: reads of up to 64 KiB, most of them too big to inline.
    let mut reply = b"state: degraded\n".to_vec();
    reply.extend(std::iter::repeat_n(b'x', 200 << 10));
    let service = StateService::tcp(&reply);
    let original = run_tcp(&home, &service, 65536);
    let id = original["id"].as_str().unwrap();
    let events = events(&home, id);
    assert!(
        events
            .iter()
            .any(|e| e["kind"] == "tcp-read" && e["outcome"]["blob"]["digest"].is_string()),
        "{events:#?}"
    );

    let dir = tempfile::tempdir().unwrap();
    let case = dir.path().join("case.wfreplay");
    home.run(&["execution", "export", id, "-o", s(&case)]).ok();
    let fresh = Home::new();
    let replay = fresh.run(&["execution", "replay", "--bundle", s(&case)]);
    replay.ok();
    assert_eq!(replay.stdout.trim(), "reproduced: identical error");
    assert_eq!(
        fresh.last_record()["error"]["message"],
        original["error"]["message"]
    );
    assert_eq!(service.asked(), 1);
}

#[test]
fn a_stream_without_end_is_stopped_at_the_recording_limit() {
    let home = Home::new();
    // 80 MiB: more than the 64 MiB an execution may record.
    let mut reply = b"state: ok\n".to_vec();
    reply.resize(80 << 20, b'x');
    let service = StateService::tcp(&reply);
    let args = probe(
        &service,
        "sockets",
        &["-p", "probe.chunk=65536", "--memory", "512MiB"],
    );
    run(&home, &args).code(1).stderr_has("[recording-limit]");
    let rec = home.last_record();
    assert_eq!(rec["status"], "failed");
    assert_eq!(rec["error"]["code"], "recording-limit");
}

#[test]
fn udp_replay_reproduces_the_error_and_another_destination_diverges() {
    let home = Home::new();
    let service = StateService::udp(b"state: degraded\n");
    let port = service.port.to_string();
    run(
        &home,
        &probe(&service, "sockets", &["-p", "probe.udp=true"]),
    )
    .code(1)
    .stderr_has("[unhealthy]");
    let original = home.last_record();
    let id = original["id"].as_str().unwrap();
    assert_eq!(
        original["error"]["message"],
        format!("localhost (127.0.0.1:{port}) said 'state: degraded' (16 bytes)")
    );
    assert_eq!(service.asked(), 1);

    let events = events(&home, id);
    let send = events.iter().position(|e| e["kind"] == "udp-send").unwrap();
    assert_eq!(
        events[send]["to"],
        serde_json::json!([format!("127.0.0.1:{port}")])
    );
    assert_eq!(events[send]["outcome"]["sent"], 1);
    let received = events
        .iter()
        .filter(|e| e["kind"] == "udp-receive")
        .filter_map(|e| e["outcome"]["datagrams"].as_array())
        .flatten()
        .collect::<Vec<_>>();
    assert_eq!(received.len(), 1, "{events:#?}");
    assert_eq!(received[0]["from"], format!("127.0.0.1:{port}"));

    // The service changed its answer; the replay does not ask it.
    service.answer(b"state: ok\n");
    let replay = home.run(&["execution", "replay", id]);
    replay.ok();
    assert_eq!(replay.stdout.trim(), "reproduced: identical error");
    assert_eq!(
        home.last_record()["error"]["message"],
        original["error"]["message"]
    );
    assert_eq!(service.asked(), 1);

    let other = fixture("sockets-other-port");
    let replay = home.run(&["execution", "replay", id, "--component", s(&other)]);
    replay.code(1);
    assert_eq!(
        replay.stdout.trim(),
        format!(
            "diverged at event {}: guest asked UDP send to 127.0.0.1:{}, \
             recorded UDP send to 127.0.0.1:{port}",
            send + 1,
            service.port + 1
        )
    );
    assert_eq!(service.asked(), 1);
}

/// A lookup of a name no net grant names is denied and logged, and never
/// reaches the resolver; a grant of a literal address allows no lookups.
#[test]
fn names_are_looked_up_only_when_a_grant_names_them() {
    let home = Home::new();
    let service = StateService::tcp(b"state: ok\n");
    let port = service.port;
    let r = run(
        &home,
        &[
            "run".into(),
            s(&fixture("sockets")).into(),
            "-p".into(),
            "probe.host=localhost".into(),
            "-p".into(),
            format!("probe.port={port}"),
            "--allow-net".into(),
            format!("127.0.0.1:{port}"),
        ],
    );
    r.code(1).stderr_has("[lookup] localhost");
    let rec = home.last_record();
    assert!(
        rec["logs"]
            .to_string()
            .contains("denied: net name lookup of localhost"),
        "{}",
        rec["logs"]
    );
    assert_eq!(service.asked(), 0, "nothing reached the service");
    // The denial is part of the recording: a replay answers the same.
    let id = rec["id"].as_str().unwrap();
    home.run(&["execution", "replay", id]).ok();
    // Granted by name, the same lookup goes through.
    run(&home, &probe(&service, "sockets", &[])).ok();
}
