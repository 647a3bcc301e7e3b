//! Confinement of the host programs an action starts through
//! `wasmflow:action/process`.
//!
//! The WebAssembly sandbox holds the guest; a granted program runs natively
//! and is held here, in the child between `fork` and `exec`:
//! - **Landlock** (file system): read and execute the program itself and
//!   the system paths a program needs to start (`/usr`, `/lib*`, `/bin`,
//!   `/sbin`, the dynamic loader's cache and configuration, locale and time
//!   zone data, `/dev/null`, `/dev/zero`, `/dev/urandom`), read the
//!   execution's read grants, read and write its write grants; nothing
//!   else (not `/etc/passwd`, not `/proc`, not the store's home).
//! - **Landlock** (TCP, ABI 4+): no `bind`; `connect` only to the granted
//!   ports (any port when a net grant names none, none without net
//!   grants). Hosts are not checked for programs (Landlock filters ports).
//! - **Landlock scopes** (ABI 6+): no signals to processes outside the
//!   confinement, no abstract UNIX sockets made outside it.
//! - **seccomp**: `socket()` fails for every family but IPv4/IPv6, and
//!   for those too without a net grant: no UDP, raw, packet or netlink
//!   socket without one, and never a UNIX socket (`/run/docker.sock`, a
//!   D-Bus bus) reached by path; `io_uring` is refused (it could open
//!   sockets past the filter).
//! - Its own process group, which `process` kills whole.
//!
//! What it must not touch: the guest's WASI context, the recording (that
//! is `sandbox`'s), the store.

use crate::granted::GrantedDir;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use landlock::{
    Access, AccessFs, AccessNet, CompatLevel, Compatible, NetPort, PathBeneath, PathFd, Ruleset,
    RulesetAttr, RulesetCreated, RulesetCreatedAttr, Scope, ABI,
};

/// The newest Landlock ABI this code asks for; older kernels get what they
/// support of it (best effort), checked by [`mode`].
const ABI_WANTED: ABI = ABI::V6;

/// Read-only system paths a dynamically linked program needs to start.
const SYSTEM_READ: &[&str] = &[
    "/usr",
    "/lib",
    "/lib64",
    "/lib32",
    "/bin",
    "/sbin",
    "/etc/ld.so.cache",
    "/etc/ld.so.conf",
    "/etc/ld.so.conf.d",
    "/etc/localtime",
    "/etc/locale.alias",
    "/dev/zero",
    "/dev/urandom",
    "/dev/random",
];

/// Devices a program may write (its output thrown away).
const SYSTEM_WRITE: &[&str] = &["/dev/null"];

/// What the grants of one execution let its programs reach.
#[derive(Clone, Debug, Default)]
pub(crate) struct Policy {
    /// The granted directories, held open (see `granted`): the rules
    /// attach to these very directories, not to what their paths name
    /// when a program starts.
    pub read: Vec<Arc<GrantedDir>>,
    pub write: Vec<Arc<GrantedDir>>,
    pub net: Net,
    /// The operator allowed programs to run without Landlock where the
    /// kernel has none (`--allow-unconfined-exec`).
    pub allow_unconfined: bool,
}

impl Policy {
    /// The reach of programs under an execution's grants.
    pub(crate) fn of(grants: &wasmflow_store::Grants, dirs: &[(Arc<GrantedDir>, bool)]) -> Self {
        let net = if grants.net.is_empty() {
            Net::None
        } else if grants.net.iter().any(|g| g.port.is_none()) {
            Net::AnyPort
        } else {
            let mut ports: Vec<u16> = grants.net.iter().filter_map(|g| g.port).collect();
            ports.sort_unstable();
            ports.dedup();
            Net::Ports(ports)
        };
        Self {
            read: dirs
                .iter()
                .filter(|(_, w)| !w)
                .map(|(d, _)| d.clone())
                .collect(),
            write: dirs
                .iter()
                .filter(|(_, w)| *w)
                .map(|(d, _)| d.clone())
                .collect(),
            net,
            allow_unconfined: grants.unconfined_exec,
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) enum Net {
    /// No net grant: no network at all.
    #[default]
    None,
    /// TCP connects to these ports only.
    Ports(Vec<u16>),
    /// A net grant without a port: any TCP port (hosts are not checked).
    AnyPort,
}

/// How programs are confined on this machine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Landlock with file system, TCP and scope rules.
    Full,
    /// Landlock, but an older ABI: some rules (TCP ports, scopes) are not
    /// enforced.
    Partial,
    /// The kernel has no Landlock.
    Unavailable,
}

impl Mode {
    pub fn describe(self) -> &'static str {
        match self {
            Mode::Full => "confined (Landlock: files, TCP ports, scopes; seccomp: sockets only with net grants)",
            Mode::Partial => "partly confined (an older Landlock: files; TCP ports or scopes not enforced)",
            Mode::Unavailable => "not confined: this kernel has no Landlock (process.run refuses unless --allow-unconfined-exec)",
        }
    }
}

/// The confinement this kernel offers, probed once per process.
pub fn mode() -> Mode {
    static MODE: OnceLock<Mode> = OnceLock::new();
    *MODE.get_or_init(|| {
        if std::env::var_os("WASMFLOW_TEST_NO_LANDLOCK").is_some() {
            // Fault injection for the tests of the refusal path.
            return Mode::Unavailable;
        }
        // SAFETY: the documented ABI probe: no attribute, size 0, the
        // VERSION flag; it only returns a number.
        let abi = unsafe {
            libc::syscall(
                libc::SYS_landlock_create_ruleset,
                std::ptr::null::<u8>(),
                0usize,
                1u32, // LANDLOCK_CREATE_RULESET_VERSION
            )
        };
        match abi {
            a if a >= ABI_WANTED as i64 => Mode::Full,
            a if a >= 1 => Mode::Partial,
            _ => Mode::Unavailable,
        }
    })
}

/// The seccomp filter every program gets: `socket()` fails with EACCES
/// except for IPv4/IPv6 when `inet` (the execution has net grants), so no
/// UNIX socket (`/run/docker.sock`...), netlink, packet or raw socket is
/// ever opened, and `io_uring_setup` fails (its requests would bypass the
/// filter). `socketpair` (unnamed) stays.
fn socket_filter(inet: bool) -> Vec<libc::sock_filter> {
    #[cfg(target_arch = "x86_64")]
    const ARCH: u32 = 0xC000_003E; // AUDIT_ARCH_X86_64
    #[cfg(target_arch = "aarch64")]
    const ARCH: u32 = 0xC000_00B7; // AUDIT_ARCH_AARCH64
                                   // x32 system calls on x86_64 carry this bit; elsewhere no number does.
    const X32: u32 = 0x4000_0000;
    let deny = libc::SECCOMP_RET_ERRNO | libc::EACCES as u32;
    let stmt = |code: u32, k: u32| libc::sock_filter {
        code: code as u16,
        jt: 0,
        jf: 0,
        k,
    };
    let jump = |code: u32, k: u32, jt: u8| libc::sock_filter {
        code: code as u16,
        jt,
        jf: 0,
        k,
    };
    let ld = |offset: u32| stmt(libc::BPF_LD | libc::BPF_W | libc::BPF_ABS, offset);
    let jeq = |k: u32, jt: u8| jump(libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K, k, jt);
    let ret = |k: u32| stmt(libc::BPF_RET | libc::BPF_K, k);
    // Jumps count the instructions skipped: [8] is `socket`'s check, the
    // last instruction but one denies, the last allows.
    let mut f = vec![
        ld(4),                                                     // 0: arch
        jeq(ARCH, 1),                                              // 1
        ret(libc::SECCOMP_RET_KILL_PROCESS),                       // 2
        ld(0),                                                     // 3: nr
        jump(libc::BPF_JMP | libc::BPF_JGE | libc::BPF_K, X32, 0), // 4 -> deny
        jeq(libc::SYS_socket as u32, 2),                           // 5 -> 8
        jeq(libc::SYS_io_uring_setup as u32, 0),                   // 6 -> deny
        ret(libc::SECCOMP_RET_ALLOW),                              // 7
    ];
    if inet {
        f.extend([
            ld(16),                        // 8: args[0], the family
            jeq(libc::AF_INET as u32, 2),  // 9 -> allow
            jeq(libc::AF_INET6 as u32, 1), // 10 -> allow
        ]);
    }
    f.extend([ret(deny), ret(libc::SECCOMP_RET_ALLOW)]);
    let deny_at = (f.len() - 2) as u8;
    f[4].jt = deny_at - 5;
    f[6].jt = deny_at - 7;
    f
}

/// Enter `filter` (after Landlock, which set no_new_privs).
fn install_filter(filter: &[libc::sock_filter]) -> std::io::Result<()> {
    let prog = libc::sock_fprog {
        len: filter.len() as u16,
        filter: filter.as_ptr() as *mut libc::sock_filter,
    };
    // SAFETY: `prog` points at `filter`, alive for the call; both prctl
    // calls take plain arguments.
    unsafe {
        if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0
            || libc::prctl(
                libc::PR_SET_SECCOMP,
                libc::SECCOMP_MODE_FILTER,
                &prog as *const libc::sock_fprog,
            ) != 0
        {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum ConfineError {
    #[error(
        "this kernel has no Landlock, so `{0}` cannot be confined to the execution's grants; \
         the operator may allow it with --allow-unconfined-exec"
    )]
    Unconfined(String),
    #[error("cannot set up the confinement of `{program}`: {message}")]
    Setup { program: String, message: String },
}

/// A confinement ready to be entered by one child.
pub(crate) struct Prepared {
    ruleset: Option<RulesetCreated>,
    filter: Option<Vec<libc::sock_filter>>,
}

// SAFETY: the filter is plain data (the raw pointer in `sock_filter` is
// not used; `sock_filter` has none, `Vec` owns its buffer).
unsafe impl Send for Prepared {}
unsafe impl Sync for Prepared {}

impl Prepared {
    /// Install it in `cmd`: the child enters it between `fork` and `exec`.
    pub(crate) fn install(self, cmd: &mut tokio::process::Command) {
        let Prepared {
            mut ruleset,
            filter,
        } = self;
        // SAFETY: the closure makes only system calls (prctl,
        // landlock_restrict_self, close) and allocates nothing: the ruleset
        // and the filter were built, and the paths opened, before the fork.
        unsafe {
            cmd.pre_exec(move || {
                if let Some(r) = ruleset.take() {
                    r.restrict_self().map_err(std::io::Error::other)?;
                }
                if let Some(f) = &filter {
                    install_filter(f)?;
                }
                Ok(())
            });
        }
    }
}

/// Build the confinement of `program` under `policy`.
pub(crate) fn prepare(policy: &Policy, program: &Path) -> Result<Prepared, ConfineError> {
    let name = program.display().to_string();
    let setup = |e: &dyn std::fmt::Display| ConfineError::Setup {
        program: name.clone(),
        message: e.to_string(),
    };
    if mode() == Mode::Unavailable {
        if policy.allow_unconfined {
            // As the operator allowed: the program runs as it would
            // outside wasmflow (its own process group, empty environment).
            return Ok(Prepared {
                ruleset: None,
                filter: None,
            });
        }
        return Err(ConfineError::Unconfined(name));
    }
    let abi = ABI_WANTED;
    let mut handled_net: landlock::BitFlags<AccessNet> = AccessNet::BindTcp.into();
    if policy.net != Net::AnyPort {
        handled_net |= AccessNet::ConnectTcp;
    }
    let mut ruleset = Ruleset::default()
        .set_compatibility(CompatLevel::BestEffort)
        .handle_access(AccessFs::from_all(abi))
        .and_then(|r| r.handle_access(handled_net))
        .and_then(|r| r.scope(Scope::from_all(abi)))
        .and_then(|r| r.create())
        .map_err(|e| setup(&e))?
        .no_new_privs(true);
    let read = AccessFs::from_read(abi);
    let all = AccessFs::from_all(abi);
    let mut system: Vec<(PathFd, landlock::BitFlags<AccessFs>)> = Vec::new();
    let paths = std::iter::once((program.to_owned(), read))
        .chain(SYSTEM_READ.iter().map(|p| (PathBuf::from(p), read)))
        .chain(
            SYSTEM_WRITE
                .iter()
                .map(|p| (PathBuf::from(p), read | AccessFs::WriteFile)),
        );
    for (path, access) in paths {
        // A system path this machine does not have is simply not granted.
        if let Ok(fd) = PathFd::new(&path) {
            system.push((fd, access));
        }
    }
    let rules = system
        .iter()
        .map(|(fd, access)| (fd.as_fd(), *access))
        .chain(policy.read.iter().map(|d| (d.fd(), read)))
        .chain(policy.write.iter().map(|d| (d.fd(), all)));
    for (fd, access) in rules {
        let access = if is_dir(fd) {
            access
        } else {
            access & AccessFs::from_file(abi)
        };
        ruleset = ruleset
            .add_rule(PathBeneath::new(fd, access))
            .map_err(|e| setup(&e))?;
    }
    if let Net::Ports(ports) = &policy.net {
        for port in ports {
            ruleset = ruleset
                .add_rule(NetPort::new(*port, AccessNet::ConnectTcp))
                .map_err(|e| setup(&e))?;
        }
    }
    Ok(Prepared {
        ruleset: Some(ruleset),
        filter: Some(socket_filter(policy.net != Net::None)),
    })
}

fn is_dir(fd: BorrowedFd<'_>) -> bool {
    // fstat works on O_PATH descriptors (PathFd) too.
    let raw = fd.as_raw_fd();
    let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
    // SAFETY: a valid descriptor and a buffer fstat fills.
    if unsafe { libc::fstat(raw, st.as_mut_ptr()) } != 0 {
        return true;
    }
    // SAFETY: fstat returned 0.
    let st = unsafe { st.assume_init() };
    st.st_mode & libc::S_IFMT == libc::S_IFDIR
}

/// The ruleset status of a child that entered a confinement, for tests.
#[cfg(test)]
fn status_in_child(policy: &Policy) -> landlock::RulesetStatus {
    let prepared = prepare(policy, Path::new("/bin/true")).unwrap();
    prepared.ruleset.unwrap().restrict_self().unwrap().ruleset
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kernel_here_enforces_landlock() {
        assert_eq!(mode(), Mode::Full, "CI's kernel has Landlock ABI 6+");
        // Restricting this test thread is fine: it ends right after.
        let status = std::thread::spawn(|| status_in_child(&Policy::default()))
            .join()
            .unwrap();
        assert_eq!(status, landlock::RulesetStatus::FullyEnforced);
    }
}
