//! Bounded compilation.
//!
//! `--timeout` and `--memory` bound what a guest does when it runs; turning
//! a component into machine code comes before that, and Cranelift's time
//! and memory grow with the component (a generated component of 200,000
//! functions took 26 s and 1.15 GB). A component over the size limit is
//! refused unread. Otherwise, where the embedder gave a compiler program
//! (the CLI and the server give their own binary), the compilation runs in
//! a child process under `RLIMIT_AS` (memory) and `RLIMIT_CPU`, killed at
//! the wall-clock bound; the machine code it writes back is loaded here.
//! Past a bound the load fails with [`CompileLimit`] (code
//! `compile-limit`), and the process that asked goes on (a server keeps
//! serving). Without a compiler program (the library's tests and benches)
//! only the size limit applies.
//!
//! What it must not touch: the component cache (that is `cache`'s), the
//! store.

use std::io::{Read, Write};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The hidden subcommand the compiler program is started with; it must
/// call [`child_main`].
pub const CHILD_COMMAND: &str = "__compile-component";

/// Bounds on compiling one component.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CompileLimits {
    /// Larger components are refused before they are compiled.
    pub max_component_bytes: u64,
    /// Wall-clock bound on one compilation (CPU time is bounded at twice
    /// this, for the compiler's threads).
    pub timeout: Duration,
    /// Address space of the compiling process.
    pub memory_bytes: u64,
}

impl Default for CompileLimits {
    fn default() -> Self {
        Self {
            max_component_bytes: 64 << 20,
            // An 18 MB Python component takes ~9 s on 2 cores; a slow or
            // busy machine gets a wide margin.
            timeout: Duration::from_secs(300),
            memory_bytes: 4 << 30,
        }
    }
}

/// How components are compiled.
#[derive(Clone, Debug, Default)]
pub struct CompileOptions {
    pub limits: CompileLimits,
    /// Told when a compilation starts and ends (a first run of a Python
    /// component compiles for seconds: the CLI shows it).
    pub progress: Option<CompileProgress>,
    /// The program to compile in (run as `PROGRAM __compile-component`);
    /// `None` compiles in this process, bounded by size only. Only ever
    /// this binary (see [`CompileOptions::in_child`]): its output is
    /// loaded as machine code.
    pub(crate) compiler: Option<PathBuf>,
}

impl CompileOptions {
    /// Compile in a child process of this very binary, which must answer
    /// [`CHILD_COMMAND`] with [`child_main`].
    pub fn in_child(limits: CompileLimits) -> Self {
        Self {
            limits,
            progress: None,
            // Not `current_exe()`: /proc/self/exe still works when the
            // binary was replaced on disk since this process started.
            compiler: Some(PathBuf::from("/proc/self/exe")),
        }
    }

    /// These options, telling `progress` of every compilation.
    pub fn with_progress(self, progress: CompileProgress) -> Self {
        Self {
            progress: Some(progress),
            ..self
        }
    }
}

/// A compilation's start and end, for whoever shows progress.
#[derive(Clone, Debug)]
pub enum CompileEvent {
    Started {
        reference: String,
        bytes: u64,
    },
    Finished {
        reference: String,
        elapsed: std::time::Duration,
        /// Zero when compiled in this process (no function cache).
        functions: FunctionCounts,
    },
}

/// Whoever shows compilations' progress.
#[derive(Clone)]
pub struct CompileProgress(pub std::sync::Arc<dyn Fn(&CompileEvent) + Send + Sync>);

impl std::fmt::Debug for CompileProgress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CompileProgress")
    }
}

impl CompileOptions {
    pub(crate) fn tell(&self, event: CompileEvent) {
        if let Some(progress) = &self.progress {
            (progress.0)(&event);
        }
    }
}

/// A compilation past one of its bounds.
#[derive(Clone, Debug, thiserror::Error)]
#[error("compile-limit: {0}")]
pub struct CompileLimit(pub String);

#[derive(Debug, thiserror::Error)]
pub(crate) enum CompileError {
    #[error(transparent)]
    Limit(#[from] CompileLimit),
    /// The component does not compile (the compiler's own message).
    #[error("{0}")]
    Invalid(String),
    #[error("cannot start the compiler {program}: {cause}")]
    Spawn {
        program: String,
        cause: std::io::Error,
    },
}

/// Refuse a component over the size limit, before anything reads it whole.
pub(crate) fn check_size(limits: &CompileLimits, bytes: u64) -> Result<(), CompileLimit> {
    if bytes > limits.max_component_bytes {
        return Err(CompileLimit(format!(
            "the component is {} bytes, over the {} byte limit (--max-component-size)",
            bytes, limits.max_component_bytes
        )));
    }
    Ok(())
}

/// What a compilation reuses and adds to, beside the compiled components.
pub(crate) struct CacheDirs {
    /// The function cache (see `function_cache`).
    pub functions: PathBuf,
    /// The shared core modules (see `shared_modules`).
    pub modules: PathBuf,
}

/// Compile `bytes` in the compiler program under the limits; the
/// serialized machine code (`Engine::precompile_component`'s format, for
/// an engine built with the same settings). The child reads and adds to
/// the caches in `dirs`; `name` names the function pack it adds.
pub(crate) fn in_child(
    program: &std::path::Path,
    limits: &CompileLimits,
    bytes: &[u8],
    dirs: &CacheDirs,
    name: &str,
) -> Result<Compiled, CompileError> {
    let memory = limits.memory_bytes;
    let cpu = limits.timeout.as_secs().saturating_mul(2).max(1);
    let mut cmd = Command::new(program);
    cmd.arg(CHILD_COMMAND)
        .arg(&dirs.functions)
        .arg(name)
        .arg(&dirs.modules)
        .env_clear()
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // SAFETY: only setrlimit, async-signal-safe, between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            for (resource, value) in [(libc::RLIMIT_AS, memory), (libc::RLIMIT_CPU, cpu)] {
                let limit = libc::rlimit {
                    rlim_cur: value,
                    rlim_max: value,
                };
                if libc::setrlimit(resource, &limit) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().map_err(|cause| CompileError::Spawn {
        program: program.display().to_string(),
        cause,
    })?;
    let started = Instant::now();
    let mut stdin = child.stdin.take().expect("piped");
    let input = bytes.to_vec();
    // A child that dies early closes its end; the writer just stops.
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let mut stdout = child.stdout.take().expect("piped");
    let reader = std::thread::spawn(move || {
        let mut out = Vec::new();
        stdout.read_to_end(&mut out).map(|_| out)
    });
    let mut stderr = child.stderr.take().expect("piped");
    let errors = std::thread::spawn(move || {
        let mut out = String::new();
        let _ = stderr.read_to_string(&mut out);
        out
    });
    let mut timed_out = false;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if started.elapsed() >= limits.timeout => {
                timed_out = true;
                let _ = child.kill();
                break child.wait().expect("waiting for a killed child");
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(5)),
            Err(e) => {
                let _ = child.kill();
                return Err(CompileError::Invalid(format!(
                    "waiting for the compiler: {e}"
                )));
            }
        }
    };
    let _ = writer.join();
    let out = reader.join().expect("the reader does not panic");
    let errors = errors.join().expect("the reader does not panic");
    let seconds = crate::limits::humanize(limits.timeout);
    if timed_out || status.signal() == Some(libc::SIGXCPU) {
        return Err(CompileLimit(format!(
            "compiling took longer than {seconds} (--compile-timeout)"
        ))
        .into());
    }
    if status.success() {
        let code =
            out.map_err(|e| CompileError::Invalid(format!("reading the compiler's output: {e}")))?;
        return Ok(Compiled {
            code,
            functions: FunctionCounts::parse(&errors),
        });
    }
    // Out of address space shows as an allocation failure (abort) or an
    // error that says so; anything else is the compiler's message.
    let oom = errors.contains("memory allocation")
        || errors.contains("out of memory")
        || errors.contains("Cannot allocate memory")
        || status.signal() == Some(libc::SIGABRT)
        || status.signal() == Some(libc::SIGSEGV);
    if oom {
        return Err(CompileLimit(format!(
            "compiling needed more than {} MiB of memory (--compile-memory)",
            limits.memory_bytes >> 20
        ))
        .into());
    }
    let message = errors.trim();
    Err(CompileError::Invalid(if message.is_empty() {
        format!("the compiler stopped ({status})")
    } else {
        message.to_owned()
    }))
}

/// What the compiler program wrote back.
pub(crate) struct Compiled {
    /// `Component::serialize`'s output.
    pub code: Vec<u8>,
    pub functions: FunctionCounts,
}

/// How many of a compilation's functions came from the function cache.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FunctionCounts {
    pub reused: u64,
    pub compiled: u64,
}

impl FunctionCounts {
    const PREFIX: &'static str = "functions: ";

    fn line(&self) -> String {
        format!(
            "{}{} reused, {} compiled",
            Self::PREFIX,
            self.reused,
            self.compiled
        )
    }

    /// The counts the child printed on stderr (zero if it printed none).
    fn parse(stderr: &str) -> Self {
        let counts = stderr.lines().find_map(|l| {
            let rest = l.strip_prefix(Self::PREFIX)?;
            let (reused, rest) = rest.split_once(" reused, ")?;
            let compiled = rest.strip_suffix(" compiled")?;
            Some(Self {
                reused: reused.parse().ok()?,
                compiled: compiled.parse().ok()?,
            })
        });
        counts.unwrap_or_default()
    }
}

/// Counts a compilation's lookups in the function cache.
#[derive(Debug)]
struct Counted {
    cache: crate::function_cache::FunctionCache,
    reused: std::sync::atomic::AtomicU64,
    compiled: std::sync::atomic::AtomicU64,
}

impl wasmtime::CacheStore for Counted {
    fn get(&self, key: &[u8]) -> Option<std::borrow::Cow<'_, [u8]>> {
        let found = self.cache.get(key);
        if found.is_some() {
            self.reused
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        found
    }

    fn insert(&self, key: &[u8], value: Vec<u8>) -> bool {
        self.compiled
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.cache.insert(key, value)
    }
}

/// The compiler program's side (`PROGRAM __compile-component FUNCTIONS
/// NAME MODULES`): a component on stdin, its serialized machine code on
/// stdout, the function counts on stderr, exit status 0; or a message on
/// stderr and 1.
pub fn child_main() -> std::process::ExitCode {
    let mut args = std::env::args_os().skip(2);
    let (Some(functions), Some(name), Some(modules)) = (args.next(), args.next(), args.next())
    else {
        eprintln!("usage: {CHILD_COMMAND} FUNCTION-CACHE-DIR PACK-NAME MODULES-DIR");
        return std::process::ExitCode::FAILURE;
    };
    let run = || -> wasmtime::Result<Vec<u8>> {
        let mut bytes = Vec::new();
        std::io::stdin().read_to_end(&mut bytes)?;
        let counted = std::sync::Arc::new(Counted {
            cache: crate::function_cache::FunctionCache::open(std::path::Path::new(&functions)),
            reused: Default::default(),
            compiled: Default::default(),
        });
        // The same settings as every engine here, but never the pooling
        // allocator (it reserves address space up front, and does not
        // change the machine code).
        let engine = crate::engine::new_engine_with(
            &crate::EngineOptions::default(),
            Some(counted.clone()),
        )?;
        let (code, in_modules) =
            crate::shared_modules::compile(&engine, &bytes, std::path::Path::new(&modules))?;
        // A cache we cannot add to is a slower next compilation only.
        let _ = counted.cache.save(&name.to_string_lossy());
        let counts = FunctionCounts {
            reused: in_modules + counted.reused.load(std::sync::atomic::Ordering::Relaxed),
            compiled: counted.compiled.load(std::sync::atomic::Ordering::Relaxed),
        };
        eprintln!("{}", counts.line());
        Ok(code)
    };
    match run() {
        Ok(code) => match std::io::stdout().lock().write_all(&code) {
            Ok(()) => std::process::ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("writing the compiled component: {e}");
                std::process::ExitCode::FAILURE
            }
        },
        Err(e) => {
            eprintln!("{e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::new_engine;
    use crate::EngineOptions;
    use std::hash::{Hash, Hasher};
    use wasmtime::component::Component;

    fn hash(e: &wasmtime::Engine) -> u64 {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        e.precompile_compatibility_hash().hash(&mut h);
        h.finish()
    }

    /// The compiler program always builds an engine without the pooling
    /// allocator; its machine code must load into a pooled one.
    #[test]
    fn machine_code_of_the_plain_engine_loads_in_a_pooled_one() {
        let plain = new_engine(&EngineOptions::default()).unwrap();
        let pooled = new_engine(&EngineOptions {
            pooling_slots: 2,
            ..Default::default()
        })
        .unwrap();
        assert_eq!(hash(&plain), hash(&pooled));
        let wat = std::fs::read("../../tests/fixtures/wat/add.wat").unwrap();
        let code = Component::new(&plain, &wat).unwrap().serialize().unwrap();
        // SAFETY: serialized just above by this wasmtime.
        unsafe { Component::deserialize(&pooled, &code) }.unwrap();
    }

    #[test]
    fn sizes_over_the_limit_are_refused() {
        let limits = CompileLimits {
            max_component_bytes: 10,
            ..Default::default()
        };
        assert!(check_size(&limits, 10).is_ok());
        let e = check_size(&limits, 11).unwrap_err();
        assert!(e.to_string().contains("--max-component-size"), "{e}");
    }
}
