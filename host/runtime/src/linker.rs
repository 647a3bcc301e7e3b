//! The linker every action is instantiated with: wasmtime-wasi's WASI 0.2
//! and `wasi:http`, then wasmflow's wrappers of file opens and sockets
//! (shadowing wasmtime-wasi's), then the `wasmflow:action` interfaces.

use crate::bindings;
use crate::sandbox::Sandbox;
use wasmtime::component::{HasSelf, Linker};

pub(crate) fn linker(engine: &wasmtime::Engine) -> wasmtime::Result<Linker<Sandbox>> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)?;
    crate::host::files::add_to_linker(&mut linker)?;
    crate::host::sockets::add_to_linker(&mut linker)?;
    bindings::Imports::add_to_linker::<_, HasSelf<Sandbox>>(&mut linker, |s| s)?;
    Ok(linker)
}
