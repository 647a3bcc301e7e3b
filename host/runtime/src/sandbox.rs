//! The per-execution sandbox: WASI context built from grants, the
//! `wasmflow:action` host interfaces, and what the execution leaves behind
//! (logs, denials, captured output).
//!
//! Everything here is deny by default: no inherited stdio, environment,
//! files, network or programs. What a grant does not cover fails inside the
//! guest with the error it expects (and is written to the log), never in
//! the host.

use crate::limits::MemoryBudget;
use crate::output::CapturedOutput;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Instant;
use wasmflow_store::{Grants, Limits, LogLevel, LogLine, NetGrant, Progress};
use wasmtime::component::ResourceTable;
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

/// What one execution's host calls leave behind, shared with the hooks that
/// run outside the store (socket checks, HTTP sends).
#[derive(Default)]
pub(crate) struct Journal {
    pub logs: Vec<LogLine>,
    pub log_bytes: usize,
}

#[derive(Clone)]
pub(crate) struct SharedJournal {
    inner: Arc<Mutex<Journal>>,
    started: Instant,
    log_limit: usize,
}

/// A guest that logs past its budget is stopped: unbounded logging is as
/// hostile as unbounded printing.
#[derive(Debug, thiserror::Error)]
#[error("log exceeded the limit of {limit} bytes")]
pub(crate) struct LogLimitExceeded {
    pub limit: usize,
}

impl SharedJournal {
    fn new(log_limit: usize) -> Self {
        Self {
            inner: Arc::default(),
            started: Instant::now(),
            log_limit,
        }
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
        j.logs.push(LogLine {
            at_ms: self.started.elapsed().as_millis() as u64,
            level,
            message,
            progress,
        });
        Ok(())
    }

    /// Denials are always written, even past the log budget: the record
    /// must say what was refused.
    pub fn deny(&self, capability: &str, target: &str, hint: &str) {
        let mut j = self.inner.lock().unwrap();
        j.logs.push(LogLine {
            at_ms: self.started.elapsed().as_millis() as u64,
            level: LogLevel::Warn,
            message: format!("denied: {capability} {target} ({hint})"),
            progress: None,
        });
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
    output_limit: usize,
    pub journal: SharedJournal,
    pub memory: MemoryBudget,
    pub stdout: CapturedOutput,
    pub stderr: CapturedOutput,
}

impl Sandbox {
    pub fn new(action_name: &str, grants: &Grants, limits: &Limits) -> wasmtime::Result<Self> {
        let output_limit = usize::try_from(limits.output_bytes).unwrap_or(usize::MAX);
        let stdout = CapturedOutput::new("stdout", output_limit);
        let stderr = CapturedOutput::new("stderr", output_limit);
        let journal = SharedJournal::new(usize::try_from(limits.log_bytes).unwrap_or(usize::MAX));

        let mut wasi = WasiCtxBuilder::new();
        wasi.stdout(stdout.clone())
            .stderr(stderr.clone())
            .arg(action_name);
        for m in &grants.read {
            wasi.preopened_dir(&m.host, &m.guest, FsPerms::ReadOnly)?;
        }
        for m in &grants.write {
            wasi.preopened_dir(&m.host, &m.guest, FsPerms::ReadWrite)?;
        }
        for e in &grants.env {
            // A grant without a value passes the host's value, if it has one.
            if let Some(v) = e.value.clone().or_else(|| std::env::var(&e.name).ok()) {
                wasi.env(&e.name, v);
            }
        }
        let net = NetPolicy {
            grants: grants.net.clone(),
            journal: journal.clone(),
        };
        if !grants.net.is_empty() {
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
            output_limit,
            journal,
            memory: MemoryBudget::new(limits.memory_bytes),
            stdout,
            stderr,
        })
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
    journal: SharedJournal,
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
        let ok = self.grants.iter().any(|g| {
            g.port.is_none_or(|p| p == addr.port()) && host_addrs(&g.host).contains(&addr.ip())
        });
        if !ok {
            self.journal.deny(
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
            let target = format!("{} {}", request.method(), uri);
            self.journal.deny(
                "net",
                &target,
                &format!("not granted; use --allow-net {host}:{port}"),
            );
            return Box::new(async { Err(wasmtime_wasi_http::Error::HttpRequestDenied) });
        }
        Box::new(async move {
            use http_body_util::BodyExt;
            let (res, io) = wasmtime_wasi_http::default_send_request(request, options).await?;
            Ok((
                res.map(BodyExt::boxed_unsync),
                Box::new(io) as Box<dyn Future<Output = _> + Send>,
            ))
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
        self.journal
            .push(level, message, None)
            .map_err(wasmtime::Error::new)
    }

    fn progress(&mut self, done: u64, total: u64, message: String) -> wasmtime::Result<()> {
        self.journal
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
        let Some(path) = crate::process::resolve(&self.exec, &program) else {
            self.journal.deny(
                "exec",
                &program,
                &format!("not granted; use --allow-exec {program}"),
            );
            return Ok(Err(process::ProcessError::Denied(format!(
                "`{program}` is not granted to this execution (grant it with --allow-exec {program})"
            ))));
        };
        Ok(crate::process::run(&path, &program, &args, stdin, self.output_limit).await)
    }
}
