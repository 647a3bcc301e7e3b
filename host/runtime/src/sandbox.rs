//! The per-execution sandbox: WASI context built from grants, the
//! `wasmflow:action` host interfaces, and what the execution leaves behind
//! (logs, denials, captured output).
//!
//! Everything here is deny by default: no inherited stdio, environment,
//! files, network or programs. What a grant does not cover fails inside the
//! guest with the error it expects (and is written to the log), never in
//! the host.

use crate::granted::GrantedDir;
use crate::limits::MemoryBudget;
use crate::output::CapturedOutput;
use crate::run::LogWatcher;
use crate::world::{put_blob, MonotonicClock, RandomSource, WallClock, World};
use crate::{http_replay, setup};
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;
use wasmflow_store::{
    Event, Grants, HttpOutcome, Limits, LogLevel, LogLine, NetGrant, ProcessOutcome, Progress,
    Question,
};
use wasmtime::component::ResourceTable;
use wasmtime::error::Context as _;
use wasmtime_wasi::sockets::SocketAddrUse;
use wasmtime_wasi::{FsPerms, WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpHooks, WasiHttpView};

pub(crate) mod bindings {
    wasmtime::component::bindgen!({
        path: "../../wit",
        world: "wasmflow:action/imports",
        imports: {
            "wasmflow:action/process.run": async | trappable,
            default: trappable,
        },
    });
}

use bindings::wasmflow::action::{log, process, types};

/// The log lines one execution's host calls leave behind (the guest's
/// `log` calls, denials, notes), shared with the hooks that run outside
/// the store (socket checks, HTTP sends). Not `workflow::journal`, which
/// holds a workflow's transitions.
#[derive(Default)]
pub(crate) struct LogBook {
    pub logs: Vec<LogLine>,
    pub log_bytes: usize,
}

#[derive(Clone)]
pub(crate) struct SharedLogBook {
    inner: Arc<Mutex<LogBook>>,
    started: Instant,
    log_limit: usize,
    watcher: Option<LogWatcher>,
}

/// A guest that logs past its budget is stopped: unbounded logging is as
/// hostile as unbounded printing.
#[derive(Debug, thiserror::Error)]
#[error("log exceeded the limit of {limit} bytes")]
pub(crate) struct LogLimitExceeded {
    pub limit: usize,
}

impl SharedLogBook {
    fn new(log_limit: usize, watcher: Option<LogWatcher>) -> Self {
        Self {
            inner: Arc::default(),
            started: Instant::now(),
            log_limit,
            watcher,
        }
    }

    fn line(&self, level: LogLevel, message: String, progress: Option<Progress>) -> LogLine {
        LogLine {
            at_ms: self.started.elapsed().as_millis() as u64,
            level,
            message,
            progress,
        }
    }

    fn append(&self, log_book: &mut LogBook, line: LogLine) {
        if let Some(w) = &self.watcher {
            (w.0)(&line);
        }
        log_book.logs.push(line);
    }

    fn push(
        &self,
        level: LogLevel,
        message: String,
        progress: Option<Progress>,
    ) -> Result<(), LogLimitExceeded> {
        let mut j = self.inner.lock().unwrap();
        j.log_bytes += message.len();
        if j.log_bytes > self.log_limit {
            return Err(LogLimitExceeded {
                limit: self.log_limit,
            });
        }
        let line = self.line(level, message, progress);
        self.append(&mut j, line);
        Ok(())
    }

    /// Denials are always written, even past the log budget: the record
    /// must say what was refused.
    pub fn deny(&self, capability: &str, target: &str, hint: &str) {
        self.note(
            LogLevel::Warn,
            format!("denied: {capability} {target} ({hint})"),
        );
    }

    /// A line from the host about the execution (not counted against the
    /// guest's log budget).
    pub fn note(&self, level: LogLevel, message: String) {
        let line = self.line(level, message, None);
        self.append(&mut self.inner.lock().unwrap(), line);
    }

    pub fn take(&self) -> Vec<LogLine> {
        std::mem::take(&mut self.inner.lock().unwrap().logs)
    }
}

/// The `T` of `wasmtime::Store<T>` for one execution.
pub(crate) struct Sandbox {
    wasi: WasiCtx,
    http: WasiHttpCtx,
    net: NetPolicy,
    table: ResourceTable,
    exec: Vec<String>,
    /// What programs started through `process` may reach.
    confinement: crate::confine::Policy,
    output_limit: usize,
    pub log_book: SharedLogBook,
    pub memory: MemoryBudget,
    pub stdout: CapturedOutput,
    pub stderr: CapturedOutput,
    /// Kept for the host calls that answer from it (`process`, file opens).
    world: World,
    /// The guest's TCP sockets, as `sockets` tracks them.
    pub connections: crate::sockets::Connections,
    /// Replay only: recorded directory snapshots, materialized; removed
    /// when the sandbox is dropped.
    _snapshots: Vec<tempfile::TempDir>,
}

impl Sandbox {
    /// Build the sandbox for one execution. Every answer fixed at start
    /// (environment, random seed, directory contents) goes through `world`:
    /// recorded when live, taken from the tape in replay.
    pub fn new(
        action_name: &str,
        grants: &Grants,
        limits: &Limits,
        world: World,
        watch_logs: Option<LogWatcher>,
    ) -> wasmtime::Result<Self> {
        let output_limit = usize::try_from(limits.output_bytes).unwrap_or(usize::MAX);
        let stdout = CapturedOutput::new("stdout", output_limit);
        let stderr = CapturedOutput::new("stderr", output_limit);
        let log_book = SharedLogBook::new(
            usize::try_from(limits.log_bytes).unwrap_or(usize::MAX),
            watch_logs,
        );

        let mut wasi = WasiCtxBuilder::new();
        wasi.stdout(stdout.clone())
            .stderr(stderr.clone())
            .arg(action_name);

        for (k, v) in setup::environment(&world, grants)? {
            wasi.env(k, v);
        }
        wasi.insecure_random_seed(setup::insecure_seed(&world)?);
        let mut snapshots = Vec::new();
        let mut dirs = Vec::new();
        for (m, writable) in grants
            .read
            .iter()
            .map(|m| (m, false))
            .chain(grants.write.iter().map(|m| (m, true)))
        {
            // Opened once (see `granted`); the preopen, the snapshot and
            // the programs' confinement all derive from this handle.
            let dir = match setup::replayed_directory(&world, &m.guest, &log_book)? {
                Some(materialized) => {
                    let path = materialized.path().canonicalize().map_err(|e| {
                        wasmtime::format_err!(
                            "the snapshot of {} at {}: {e}",
                            m.guest,
                            materialized.path().display()
                        )
                    })?;
                    let dir = GrantedDir::open(&path)?;
                    snapshots.push(materialized);
                    dir
                }
                None => {
                    let dir = GrantedDir::open(Path::new(&m.host))?;
                    setup::snapshot_directory(&world, &dir, &m.guest, &log_book)?;
                    dir
                }
            };
            let perms = if writable {
                FsPerms::ReadWrite
            } else {
                FsPerms::ReadOnly
            };
            wasi.preopened_dir(dir.path(), &m.guest, perms)
                .with_context(|| format!("preopening granted directory {}", m.host))?;
            dirs.push((Arc::new(dir), writable));
        }
        wasi.wall_clock(WallClock(world.clone()))
            .monotonic_clock(MonotonicClock {
                world: world.clone(),
                start: std::time::Instant::now(),
            });
        wasi.secure_random(RandomSource {
            world: world.clone(),
            secure: true,
            live: wasmtime_wasi::thread_rng(),
        })
        .insecure_random(RandomSource {
            world: world.clone(),
            secure: false,
            live: wasmtime_wasi::thread_rng(),
        });

        let net = NetPolicy {
            grants: grants.net.clone(),
            addresses: Arc::default(),
            log_book: log_book.clone(),
            world: world.clone(),
            body_limit: output_limit.max(HTTP_BODY_MIN_LIMIT),
        };
        if world.is_replay() && !grants.net.is_empty() {
            // Connects, lookups, sends and receives are answered from the
            // tape (see `sockets`) and never reach wasmtime-wasi's sockets,
            // so nothing goes out. As a second guard the check refuses TCP
            // connects; it passes binds, and the UDP uses that fixing a UDP
            // socket's peer is checked for (which sends no packet).
            wasi.allow_tcp(true)
                .allow_udp(true)
                .allow_ip_name_lookup(false)
                .socket_addr_check(|_, usage| {
                    Box::pin(async move {
                        matches!(
                            usage,
                            SocketAddrUse::TcpBind
                                | SocketAddrUse::UdpBind
                                | SocketAddrUse::UdpSend
                                | SocketAddrUse::UdpReceive
                        )
                    })
                });
        } else if !grants.net.is_empty() {
            let policy = net.clone();
            wasi.allow_ip_name_lookup(true)
                .allow_tcp(true)
                .allow_udp(true)
                .socket_addr_check(move |addr, usage| {
                    let policy = policy.clone();
                    Box::pin(async move { policy.allows_socket(addr, usage) })
                });
        } else {
            wasi.allow_tcp(false)
                .allow_udp(false)
                .allow_ip_name_lookup(false);
        }
        Ok(Self {
            wasi: wasi.build(),
            http: WasiHttpCtx::new(),
            net,
            table: ResourceTable::new(),
            exec: grants.exec.clone(),
            confinement: crate::confine::Policy::of(grants, &dirs),
            output_limit,
            log_book,
            memory: MemoryBudget::new(limits.memory_bytes),
            stdout,
            stderr,
            world,
            connections: Default::default(),
            _snapshots: snapshots,
        })
    }
}

/// HTTP response bodies are buffered to be recorded; they may be larger
/// than the stdout limit, up to this much at least.
const HTTP_BODY_MIN_LIMIT: usize = 16 << 20;

impl Sandbox {
    pub fn world(&self) -> &World {
        &self.world
    }

    /// Whether the guest may have `name` looked up: only a name a net
    /// grant names (a grant of a literal address allows no other lookups).
    pub fn may_resolve(&self, name: &str) -> bool {
        let name = name.trim_end_matches('.');
        self.net
            .grants
            .iter()
            .any(|g| g.host.eq_ignore_ascii_case(name))
    }
}

impl WasiView for Sandbox {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for Sandbox {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.net,
        }
    }
}

/// Which hosts the guest may reach, over `wasi:http` and `wasi:sockets`.
#[derive(Clone)]
pub(crate) struct NetPolicy {
    grants: Vec<NetGrant>,
    /// The addresses each grant's host resolves to, looked up on the first
    /// socket check of the execution and kept for the rest of it.
    addresses: Arc<OnceLock<Vec<Vec<IpAddr>>>>,
    log_book: SharedLogBook,
    world: World,
    body_limit: usize,
}

impl NetPolicy {
    fn allows_host(&self, host: &str, port: u16) -> bool {
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_ascii_lowercase();
        self.grants
            .iter()
            .any(|g| g.host == host && g.port.is_none_or(|p| p == port))
    }

    /// Sockets see addresses, not names: a grant matches an address it names
    /// literally or that its host name resolves to.
    fn allows_socket(&self, addr: SocketAddr, usage: SocketAddrUse) -> bool {
        if matches!(usage, SocketAddrUse::TcpBind | SocketAddrUse::UdpBind) {
            // Binding (including the implicit bind of connect) is harmless;
            // what matters is where traffic goes.
            return true;
        }
        let addresses = self
            .addresses
            .get_or_init(|| self.grants.iter().map(|g| host_addrs(&g.host)).collect());
        let ok =
            self.grants.iter().zip(addresses).any(|(g, ips)| {
                g.port.is_none_or(|p| p == addr.port()) && ips.contains(&addr.ip())
            });
        if !ok {
            self.log_book.deny(
                "net",
                &addr.to_string(),
                "not granted; use --allow-net HOST[:PORT]",
            );
        }
        ok
    }
}

fn host_addrs(host: &str) -> Vec<IpAddr> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return vec![ip];
    }
    use std::net::ToSocketAddrs;
    (host, 0)
        .to_socket_addrs()
        .map(|it| it.map(|a| a.ip()).collect())
        .unwrap_or_default()
}

impl WasiHttpHooks for NetPolicy {
    fn send_request(
        &mut self,
        request: http::Request<wasmtime_wasi_http::WasiBody>,
        options: Option<wasmtime_wasi_http::RequestOptions>,
        fut: Box<dyn Future<Output = Result<(), wasmtime_wasi_http::Error>> + Send>,
    ) -> Box<
        dyn Future<
                Output = wasmtime_wasi_http::Result<(
                    http::Response<wasmtime_wasi_http::WasiBody>,
                    Box<dyn Future<Output = Result<(), wasmtime_wasi_http::Error>> + Send>,
                )>,
            > + Send,
    > {
        _ = fut;
        let method = request.method().to_string();
        let url = request.uri().to_string();
        let question = Question::Http {
            method: method.clone(),
            url: url.clone(),
        };
        if let Some(answer) = self.world.replayed(&question) {
            let world = self.world.clone();
            return Box::new(async move {
                match answer {
                    Ok(Event::Http { outcome, .. }) => http_replay::response(outcome, &world),
                    Ok(_) => unreachable!("the tape answers the question asked"),
                    Err(d) => Err(wasmtime_wasi_http::Error::InternalError(Some(
                        d.to_string(),
                    ))),
                }
            });
        }
        let uri = request.uri();
        let host = uri.host().unwrap_or_default().to_owned();
        let port = uri
            .port_u16()
            .unwrap_or(if uri.scheme_str() == Some("https") {
                443
            } else {
                80
            });
        if !self.allows_host(&host, port) {
            self.log_book.deny(
                "net",
                &format!("{method} {url}"),
                &format!("not granted; use --allow-net {host}:{port}"),
            );
            self.world.record(Event::Http {
                method,
                url,
                outcome: HttpOutcome::Error(http_replay::DENIED.into()),
            });
            return Box::new(async { Err(wasmtime_wasi_http::Error::HttpRequestDenied) });
        }
        let world = self.world.clone();
        let log_book = self.log_book.clone();
        let limit = self.body_limit;
        Box::new(async move {
            let result = http_replay::send_buffered(request, options, limit).await;
            if let Err(wasmtime_wasi_http::Error::HttpResponseBodySize(_)) = &result {
                // The guest sees only an error code (often shown as a bare
                // network error): say which limit it met.
                log_book.note(
                    LogLevel::Warn,
                    format!(
                        "http: the response body of {method} {url} is over the limit of {} MiB \
                         (16 MiB, or --max-output if larger); the request failed",
                        limit >> 20
                    ),
                );
            }
            if let Some(store) = world.recording_store() {
                let outcome = match &result {
                    Ok((parts, body)) => HttpOutcome::Response {
                        status: parts.status.as_u16(),
                        headers: parts
                            .headers
                            .iter()
                            .map(|(k, v)| {
                                (
                                    k.to_string(),
                                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                                )
                            })
                            .collect(),
                        body: put_blob(&store, body),
                    },
                    Err(e) => HttpOutcome::Error(http_replay::error_name(e)),
                };
                world.record(Event::Http {
                    method,
                    url,
                    outcome,
                });
            }
            let (parts, body) = result?;
            Ok(http_replay::rebuild(parts, body))
        })
    }
}

impl types::Host for Sandbox {}

impl log::Host for Sandbox {
    fn write(&mut self, level: log::Level, message: String) -> wasmtime::Result<()> {
        let level = match level {
            log::Level::Trace => LogLevel::Trace,
            log::Level::Debug => LogLevel::Debug,
            log::Level::Info => LogLevel::Info,
            log::Level::Warn => LogLevel::Warn,
            log::Level::Error => LogLevel::Error,
        };
        self.log_book
            .push(level, message, None)
            .map_err(wasmtime::Error::new)
    }

    fn progress(&mut self, done: u64, total: u64, message: String) -> wasmtime::Result<()> {
        self.log_book
            .push(LogLevel::Info, message, Some(Progress { done, total }))
            .map_err(wasmtime::Error::new)
    }
}

impl process::Host for Sandbox {
    async fn run(
        &mut self,
        program: String,
        args: Vec<String>,
        stdin: Option<Vec<u8>>,
    ) -> wasmtime::Result<Result<process::Output, process::ProcessError>> {
        let question = Question::Process {
            program: program.clone(),
            args: args.clone(),
        };
        if let Some(answer) = self.world.replayed(&question) {
            // A divergence stops the guest here: nothing it does after a
            // different question can be compared with the recording.
            let Event::Process { outcome, .. } = answer.map_err(wasmtime::Error::new)? else {
                unreachable!("the tape answers the question asked")
            };
            return from_outcome(outcome, &self.world);
        }
        let result = match crate::process::resolve(&self.exec, &program) {
            None => {
                self.log_book.deny(
                    "exec",
                    &program,
                    &format!("not granted; use --allow-exec {program}"),
                );
                Err(process::ProcessError::Denied(format!(
                    "`{program}` is not granted to this execution (grant it with --allow-exec {program})"
                )))
            }
            Some(Err(missing)) => Err(process::ProcessError::NotFound(missing)),
            Some(Ok(path)) => {
                // A program that cannot be confined stops the execution
                // (`unconfined`): the guest gets no chance to carry on as
                // if it had run.
                crate::process::run(
                    &path,
                    &program,
                    &args,
                    stdin,
                    self.output_limit,
                    &self.confinement,
                )
                .await
                .map_err(wasmtime::Error::new)?
            }
        };
        if let Some(store) = self.world.recording_store() {
            let outcome = match &result {
                Ok(o) => ProcessOutcome::Exited {
                    status: o.status,
                    stdout: put_blob(&store, &o.stdout),
                    stderr: put_blob(&store, &o.stderr),
                },
                Err(process::ProcessError::Denied(m)) => ProcessOutcome::Denied(m.clone()),
                Err(process::ProcessError::NotFound(m)) => ProcessOutcome::NotFound(m.clone()),
                Err(process::ProcessError::Failed(m)) => ProcessOutcome::Failed(m.clone()),
            };
            self.world.record(Event::Process {
                program,
                args,
                outcome,
            });
        }
        Ok(result)
    }
}

/// The recorded result of a `process.run`; a payload missing from the
/// recording stops the guest.
fn from_outcome(
    outcome: ProcessOutcome,
    world: &World,
) -> wasmtime::Result<Result<process::Output, process::ProcessError>> {
    let blob = |digest: String| {
        world
            .recorded_blob(&digest)
            .ok_or_else(|| wasmtime::format_err!("recorded output {digest} is missing"))
    };
    Ok(match outcome {
        ProcessOutcome::Exited {
            status,
            stdout,
            stderr,
        } => Ok(process::Output {
            status,
            stdout: blob(stdout)?,
            stderr: blob(stderr)?,
        }),
        ProcessOutcome::Denied(m) => Err(process::ProcessError::Denied(m)),
        ProcessOutcome::NotFound(m) => Err(process::ProcessError::NotFound(m)),
        ProcessOutcome::Failed(m) => Err(process::ProcessError::Failed(m)),
    })
}
