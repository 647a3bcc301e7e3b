//! What the world answered an execution: every answer that could differ
//! between two runs, in the order the guest asked.
//!
//! Replay feeds these answers back instead of asking the world, and checks
//! that the guest asks the same questions in the same order.

use serde::{Deserialize, Serialize};
use std::fmt;

/// One answer the sandbox gave the guest. Large payloads (HTTP bodies,
/// program output, file snapshots) are blobs, referenced by digest.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Event {
    /// The environment the grants produced, fixed at start.
    Environment {
        vars: Vec<(String, String)>,
        /// Variables whose values are secrets, after `vars`: only their
        /// digests are kept (a replay gets the values from the datastore
        /// again and checks them against these).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        secrets: Vec<SecretUse>,
    },
    /// `wasmflow:action/keys.get` of `name` and what it answered.
    Key {
        name: String,
        outcome: KeyOutcome,
    },
    /// Seed of the guest's insecure random generator, fixed at start.
    InsecureSeed {
        seed: String,
    },
    /// A snapshot of a granted directory, taken at start: `files` maps the
    /// path below the mount to the blob digest of its content.
    Directory {
        guest: String,
        files: Vec<(String, String)>,
        /// False when the directory was larger than the snapshot budget and
        /// only part of it was kept.
        #[serde(default = "yes")]
        complete: bool,
    },
    /// The guest opened `path` (relative to the directory it opened it
    /// in). The content is in the directory's snapshot.
    FileOpen {
        path: String,
    },
    WallClock {
        seconds: u64,
        nanoseconds: u32,
    },
    MonotonicClock {
        nanoseconds: u64,
    },
    /// Random draws as their bytes (base64): what recordings made before
    /// `RandomStream` hold, still replayed.
    Random {
        secure: bool,
        bytes: String,
    },
    /// A run of consecutive random draws of one kind: `len` bytes of the
    /// ChaCha20 keystream under `seed` (64 hex digits, a fresh seed from
    /// the host's generator per run; nonce zero), so a replay makes the
    /// same bytes from 32 recorded ones instead of keeping them all.
    RandomStream {
        secure: bool,
        seed: String,
        len: usize,
    },
    Process {
        program: String,
        args: Vec<String>,
        outcome: ProcessOutcome,
    },
    Http {
        method: String,
        url: String,
        outcome: HttpOutcome,
    },
    /// `wasi:sockets/ip-name-lookup`: the addresses `name` resolved to.
    NameLookup {
        name: String,
        outcome: LookupOutcome,
    },
    /// `start-connect` of a TCP socket; `error` is the WASI error code when
    /// the attempt was refused at once.
    TcpConnect {
        address: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<String>,
    },
    /// One `finish-connect` call: connected (as the execution's
    /// `connection`-th connection, from 1) or a WASI error code (including
    /// `would-block` while the connection was still being made).
    TcpFinishConnect {
        address: String,
        outcome: ConnectOutcome,
    },
    /// One read (or skip) the guest made on a TCP connection's input
    /// stream, with what it got.
    TcpRead {
        connection: u32,
        outcome: ReadOutcome,
    },
    /// One UDP `send` call: where its datagrams went (`connected` for the
    /// stream's own peer) and how many were sent.
    UdpSend {
        to: Vec<String>,
        outcome: SendOutcome,
    },
    /// One UDP `receive` call and the datagrams it returned (none is an
    /// answer too).
    UdpReceive {
        outcome: ReceiveOutcome,
    },
}

/// A secret an execution was given, by what it is named and the sha256
/// of its value (hex): never the value.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretUse {
    /// The environment variable (or key) it was given as.
    pub name: String,
    pub sha256: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum KeyOutcome {
    /// A plain key's value.
    Value(String),
    /// A secret's digest (a replay reads the value again).
    Secret(String),
    Absent,
    Denied(String),
    Unavailable(String),
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SendOutcome {
    Sent(u64),
    Error(String),
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ReceiveOutcome {
    Datagrams(Vec<Datagram>),
    Error(String),
}

/// A received datagram: its payload (base64) and its sender.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Datagram {
    pub data: String,
    pub from: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LookupOutcome {
    Addresses(Vec<String>),
    Error(String),
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ConnectOutcome {
    Connected { connection: u32 },
    Error(String),
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ReadOutcome {
    /// The bytes read, base64 (an empty read is recorded too: the guest saw
    /// "nothing yet" and acted on it).
    Data {
        bytes: String,
    },
    /// A larger read, stored as a blob.
    Blob {
        digest: String,
    },
    Closed,
    Failed(String),
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ProcessOutcome {
    Exited {
        status: i32,
        stdout: String,
        stderr: String,
    },
    Denied(String),
    NotFound(String),
    Failed(String),
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum HttpOutcome {
    Response {
        status: u16,
        headers: Vec<(String, String)>,
        body: String,
    },
    /// The request did not produce a response (denied, refused, ...).
    Error(String),
}

/// What the guest asked, without the answer: two runs agree when they ask
/// the same questions in the same order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Question {
    Setup(&'static str),
    FileOpen { path: String },
    WallClock,
    MonotonicClock,
    Random { secure: bool, len: usize },
    Process { program: String, args: Vec<String> },
    Http { method: String, url: String },
    NameLookup { name: String },
    Key { name: String },
    TcpConnect { address: String },
    TcpFinishConnect { address: String },
    TcpRead { connection: u32 },
    UdpSend { to: Vec<String> },
    UdpReceive,
}

impl Event {
    pub fn question(&self) -> Question {
        match self {
            Event::Environment { .. } => Question::Setup("environment"),
            Event::InsecureSeed { .. } => Question::Setup("insecure random seed"),
            Event::Directory { .. } => Question::Setup("directory snapshot"),
            Event::FileOpen { path } => Question::FileOpen { path: path.clone() },
            Event::WallClock { .. } => Question::WallClock,
            Event::MonotonicClock { .. } => Question::MonotonicClock,
            Event::Random { secure, bytes } => Question::Random {
                secure: *secure,
                len: base64_len(bytes),
            },
            Event::RandomStream { secure, len, .. } => Question::Random {
                secure: *secure,
                len: *len,
            },
            Event::Process { program, args, .. } => Question::Process {
                program: program.clone(),
                args: args.clone(),
            },
            Event::Http { method, url, .. } => Question::Http {
                method: method.clone(),
                url: url.clone(),
            },
            Event::NameLookup { name, .. } => Question::NameLookup { name: name.clone() },
            Event::Key { name, .. } => Question::Key { name: name.clone() },
            Event::TcpConnect { address, .. } => Question::TcpConnect {
                address: address.clone(),
            },
            Event::TcpFinishConnect { address, .. } => Question::TcpFinishConnect {
                address: address.clone(),
            },
            Event::TcpRead { connection, .. } => Question::TcpRead {
                connection: *connection,
            },
            Event::UdpSend { to, .. } => Question::UdpSend { to: to.clone() },
            Event::UdpReceive { .. } => Question::UdpReceive,
        }
    }
}

fn yes() -> bool {
    true
}

fn base64_len(s: &str) -> usize {
    let pad = s.bytes().rev().take_while(|b| *b == b'=').count();
    s.len() / 4 * 3 - pad
}

impl fmt::Display for Question {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Question::Setup(what) => f.write_str(what),
            Question::FileOpen { path } => write!(f, "open {path}"),
            Question::WallClock => f.write_str("wall clock"),
            Question::MonotonicClock => f.write_str("monotonic clock"),
            Question::Random { secure, len } => {
                write!(
                    f,
                    "{len} {} random bytes",
                    if *secure { "secure" } else { "insecure" }
                )
            }
            Question::Process { program, args } => {
                write!(f, "process `{program}`")?;
                for a in args {
                    write!(f, " {a}")?;
                }
                Ok(())
            }
            Question::Http { method, url } => write!(f, "HTTP {method} {url}"),
            Question::NameLookup { name } => write!(f, "resolve {name}"),
            Question::Key { name } => write!(f, "key {name}"),
            Question::TcpConnect { address } => write!(f, "TCP connect {address}"),
            Question::TcpFinishConnect { address } => {
                write!(f, "TCP finish-connect {address}")
            }
            Question::TcpRead { connection } => write!(f, "read TCP connection {connection}"),
            Question::UdpSend { to } => write!(f, "UDP send to {}", to.join(", ")),
            Question::UdpReceive => f.write_str("UDP receive"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_questions_know_their_length() {
        for (b64, len) in [
            ("", 0),
            ("AA==", 1),
            ("AAA=", 2),
            ("AAAA", 3),
            ("AAAAAA==", 4),
        ] {
            let e = Event::Random {
                secure: true,
                bytes: b64.into(),
            };
            assert_eq!(e.question(), Question::Random { secure: true, len });
        }
    }

    #[test]
    fn events_serialize_tagged() {
        let e = Event::Http {
            method: "GET".into(),
            url: "http://h/x".into(),
            outcome: HttpOutcome::Error("denied".into()),
        };
        let j = serde_json::to_value(&e).unwrap();
        assert_eq!(j["kind"], "http");
        assert_eq!(serde_json::from_value::<Event>(j).unwrap(), e);
    }
}
