//! The host interfaces, one file each, like wasmtime's
//! `crates/wasi/src/p2/host/`: what wasmflow adds or wraps on top of
//! wasmtime-wasi. Each answers through the sandbox's world (recorded live,
//! from the tape in replay; see `World::recorded`) and nothing here runs an
//! execution or builds a sandbox.

pub(crate) mod files;
mod http;
mod keys;
mod log;
mod process;
pub(crate) mod sockets;
