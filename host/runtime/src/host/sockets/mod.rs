//! TCP connections and name lookups as questions: `wasi:sockets`' connect,
//! name lookup and the reads of a connection are wrapped so their answers
//! are recorded (live) and given back from the tape (replay).
//!
//! Live, wasmtime-wasi does the work and this module only watches: the
//! connect address and each `finish-connect` answer, the addresses a name
//! resolved to, and every read of a connection's input stream, with what
//! the guest got (including "nothing yet"). In replay nothing reaches the
//! network: connects and lookups are answered from the tape, a connection's
//! input stream plays the recorded reads back, and its output stream
//! accepts and drops what the guest sends.
//!
//! UDP the same way, per call: each `send` (where to, how many went) and
//! each `receive` (the datagrams, none included); in replay a send reaches
//! nobody and a receive returns the recorded datagrams.
//!
//! Not here: connections the guest accepts as a server; the bytes the
//! guest writes to a TCP connection are not checked.

use crate::sandbox::Sandbox;
use wasmtime::component::Linker;
use wasmtime_wasi::p2::bindings::sockets::network::ErrorCode;
use wasmtime_wasi::p2::SocketResult;

mod codes;
mod lookup;
mod streams;
mod tcp;
mod udp;

/// The names wasmtime-wasi registers these interfaces under; guests
/// importing any 0.2.x resolve to them.
const TCP: &str = "wasi:sockets/tcp@0.2.12";
const TCP_CREATE_SOCKET: &str = "wasi:sockets/tcp-create-socket@0.2.12";
const IP_NAME_LOOKUP: &str = "wasi:sockets/ip-name-lookup@0.2.12";
const UDP: &str = "wasi:sockets/udp@0.2.12";

/// What a wrapped socket function returns to the guest.
type Answer<T> = wasmtime::Result<(Result<T, ErrorCode>,)>;

pub(crate) fn add_to_linker(linker: &mut Linker<Sandbox>) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    tcp::add_to_linker(linker)?;
    udp::add_to_linker(linker)?;
    lookup::add_to_linker(linker)?;
    linker.allow_shadowing(false);
    Ok(())
}

/// A wasmtime-wasi socket result as the guest gets it: the value or the
/// WASI error code; anything else (a bad handle) traps.
fn guest<T>(r: SocketResult<T>) -> wasmtime::Result<Result<T, ErrorCode>> {
    match r {
        Ok(v) => Ok(Ok(v)),
        Err(e) => Ok(Err(e.downcast()?)),
    }
}
