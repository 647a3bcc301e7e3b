//! The per-execution sandbox: the `T` of `wasmtime::Store<T>`. It holds
//! the WASI context built from the grants and what the execution leaves
//! behind (logs, denials, captured output); the host interfaces that use
//! it are in `host/`, one file each.
//!
//! Everything here is deny by default: no inherited stdio, environment,
//! files, network or programs. What a grant does not cover fails inside the
//! guest with the error it expects (and is written to the log), never in
//! the host.
//!
//! Uses the leaves (world, log book, limits, output, net policy) and the
//! set-up; nothing here knows the host interfaces or how an execution is
//! run.

use crate::granted::GrantedDir;
use crate::limits::MemoryBudget;
use crate::log_book::{LogWatcher, SharedLogBook};
use crate::net::{Connections, NetPolicy};
use crate::output::CapturedOutput;
use crate::secrets::Secrets;
use crate::setup;
use crate::world::{MonotonicClock, RandomSource, WallClock, World};
use std::path::Path;
use std::sync::Arc;
use wasmflow_store::{Grants, Limits};
use wasmtime::component::ResourceTable;
use wasmtime::error::Context as _;
use wasmtime_wasi::sockets::SocketAddrUse;
use wasmtime_wasi::{FsPerms, WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

/// The `T` of `wasmtime::Store<T>` for one execution.
pub(crate) struct Sandbox {
    wasi: WasiCtx,
    http: WasiHttpCtx,
    /// What the guest may reach over the network.
    pub net: NetPolicy,
    table: ResourceTable,
    /// The programs it may start through `process`.
    pub exec: Vec<String>,
    /// What those programs may reach.
    pub confinement: crate::confine::Policy,
    pub output_limit: usize,
    pub log_book: SharedLogBook,
    pub memory: MemoryBudget,
    pub stdout: CapturedOutput,
    pub stderr: CapturedOutput,
    /// Kept for the host calls that answer from it (`process`, file opens).
    world: World,
    /// Where `wasmflow:action/keys` reads, and the key patterns it may
    /// read.
    pub secrets: Arc<Secrets>,
    pub key_grants: Vec<String>,
    /// Given to granted programs besides `PATH`: the `--secret-env`
    /// variables.
    pub program_env: Vec<(String, String)>,
    /// The guest's TCP sockets, as `host::sockets` tracks them.
    pub connections: Connections,
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
        secrets: &Arc<Secrets>,
    ) -> wasmtime::Result<Self> {
        // Lines are streamed as they are written: masked on the way too.
        let masker = world.masker().clone();
        let watch_logs = watch_logs.map(|w| {
            LogWatcher(Arc::new(move |line: &wasmflow_store::LogLine| {
                (w.0)(&masker.line(line))
            }))
        });
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

        let env = setup::environment(&world, grants, secrets)?;
        for (k, v) in &env.vars {
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

        let net = NetPolicy::new(
            grants.net.clone(),
            log_book.clone(),
            world.clone(),
            output_limit.max(HTTP_BODY_MIN_LIMIT),
        );
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
            secrets: secrets.clone(),
            key_grants: grants.keys.clone(),
            program_env: env.for_programs,
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
