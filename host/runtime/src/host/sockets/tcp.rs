//! `wasi:sockets/tcp`: connect and its answer as questions, and the
//! calls wasmtime-wasi cannot answer for a connection it never made (a
//! replayed one).

use super::codes::{error_code, error_name};
use super::streams::{RecordedInput, ReplayedInput};
use super::{guest, Answer, TCP, TCP_CREATE_SOCKET};
use crate::sandbox::Sandbox;
use std::net::SocketAddr;
use wasmflow_store::{ConnectOutcome, Event, Question};
use wasmtime::component::{Linker, Resource};
use wasmtime::StoreContextMut;
use wasmtime_wasi::p2::bindings::sockets::network::{ErrorCode, IpSocketAddress};
use wasmtime_wasi::p2::bindings::sockets::tcp::{HostTcpSocket, ShutdownType};
use wasmtime_wasi::p2::bindings::sockets::tcp_create_socket::{Host as _, IpAddressFamily};
use wasmtime_wasi::p2::{DynInputStream, DynOutputStream, Network, TcpSocket};
use wasmtime_wasi::sockets::WasiSocketsView;

type Streams = (Resource<DynInputStream>, Resource<DynOutputStream>);

pub(super) fn add_to_linker(linker: &mut Linker<Sandbox>) -> wasmtime::Result<()> {
    linker
        .instance(TCP_CREATE_SOCKET)?
        .func_wrap("create-tcp-socket", create_tcp_socket)?;
    let mut tcp = linker.instance(TCP)?;
    tcp.func_wrap("[method]tcp-socket.start-connect", start_connect)?;
    tcp.func_wrap("[method]tcp-socket.finish-connect", finish_connect)?;
    tcp.func_wrap("[method]tcp-socket.remote-address", remote_address)?;
    tcp.func_wrap("[method]tcp-socket.shutdown", shutdown)?;
    Ok(())
}

/// A fresh socket may reuse a dropped one's handle: forget that one.
fn create_tcp_socket(
    mut store: StoreContextMut<'_, Sandbox>,
    (family,): (IpAddressFamily,),
) -> Answer<Resource<TcpSocket>> {
    let sandbox = store.data_mut();
    let socket = match guest(sandbox.sockets().create_tcp_socket(family))? {
        Ok(s) => s,
        Err(code) => return Ok((Err(code),)),
    };
    sandbox.connections.connecting.remove(&socket.rep());
    sandbox.connections.replayed.remove(&socket.rep());
    Ok((Ok(socket),))
}

fn start_connect(
    mut store: StoreContextMut<'_, Sandbox>,
    (socket, network, remote): (Resource<TcpSocket>, Resource<Network>, IpSocketAddress),
) -> Answer<()> {
    let sandbox = store.data_mut();
    let addr = SocketAddr::from(remote);
    let rep = socket.rep();
    let question = Question::TcpConnect {
        address: addr.to_string(),
    };
    let recorded = sandbox.world().recorded(&question, |e| match e {
        Event::TcpConnect { error, .. } => Some(error),
        _ => None,
    })?;
    let result = match recorded {
        Some(error) => {
            // The network handle is the capability: it must be real.
            sandbox.sockets().table.get(&network)?;
            match error {
                Some(code) => Err(error_code(&code)?),
                None => Ok(()),
            }
        }
        None => {
            let result = guest(sandbox.sockets().start_connect(socket, network, remote))?;
            sandbox.world().record(Event::TcpConnect {
                address: addr.to_string(),
                error: result.err().map(|c| error_name(c).to_owned()),
            });
            result
        }
    };
    if result.is_ok() {
        sandbox.connections.connecting.insert(rep, addr);
    }
    Ok((result,))
}

fn finish_connect(
    mut store: StoreContextMut<'_, Sandbox>,
    (socket,): (Resource<TcpSocket>,),
) -> Answer<Streams> {
    let sandbox = store.data_mut();
    let rep = socket.rep();
    let Some(addr) = sandbox.connections.connecting.get(&rep).copied() else {
        // No connect of ours is under way: wasmtime-wasi says so.
        let r = guest(sandbox.sockets().finish_connect(socket))?;
        return Ok((Err(r.err().unwrap_or(ErrorCode::NotInProgress)),));
    };
    let question = Question::TcpFinishConnect {
        address: addr.to_string(),
    };
    let recorded = sandbox.world().recorded(&question, |e| match e {
        Event::TcpFinishConnect { outcome, .. } => Some(outcome),
        _ => None,
    })?;
    let (result, replay) = match recorded {
        Some(outcome) => (replayed_connection(sandbox, rep, outcome)?, true),
        None => (live_connection(sandbox, socket, addr)?, false),
    };
    // A connect that ended (either way) is no longer under way;
    // `would-block` means it still is.
    if !matches!(result, Err(ErrorCode::WouldBlock)) {
        sandbox.connections.connecting.remove(&rep);
        if replay && result.is_ok() {
            sandbox.connections.replayed.insert(rep, addr);
        }
    }
    Ok((result,))
}

/// Live: wasmtime-wasi's answer, recorded, with the input stream wrapped
/// so its reads are recorded too.
fn live_connection(
    sandbox: &mut Sandbox,
    socket: Resource<TcpSocket>,
    addr: SocketAddr,
) -> wasmtime::Result<Result<Streams, ErrorCode>> {
    let rep = socket.rep();
    let world = sandbox.world().clone();
    let (input, output) = match guest(sandbox.sockets().finish_connect(socket))? {
        Ok(streams) => streams,
        Err(code) => {
            world.record(Event::TcpFinishConnect {
                address: addr.to_string(),
                outcome: ConnectOutcome::Error(error_name(code).into()),
            });
            return Ok(Err(code));
        }
    };
    sandbox.connections.made += 1;
    let connection = sandbox.connections.made;
    let table = sandbox.sockets().table;
    let inner: DynInputStream = table.delete(input)?;
    let recorded = RecordedInput {
        inner,
        world: world.clone(),
        connection,
    };
    let parent = Resource::<TcpSocket>::new_borrow(rep);
    let input = table.push_child(Box::new(recorded) as DynInputStream, &parent)?;
    world.record(Event::TcpFinishConnect {
        address: addr.to_string(),
        outcome: ConnectOutcome::Connected { connection },
    });
    Ok(Ok((input, output)))
}

/// Replay: the recorded answer, with streams that play the recorded reads
/// back and drop what is written.
fn replayed_connection(
    sandbox: &mut Sandbox,
    rep: u32,
    outcome: ConnectOutcome,
) -> wasmtime::Result<Result<Streams, ErrorCode>> {
    let connection = match outcome {
        ConnectOutcome::Connected { connection } => connection,
        ConnectOutcome::Error(code) => return Ok(Err(error_code(&code)?)),
    };
    let world = sandbox.world().clone();
    let table = sandbox.sockets().table;
    let parent = Resource::<TcpSocket>::new_borrow(rep);
    let input = table.push_child(
        Box::new(ReplayedInput { world, connection }) as DynInputStream,
        &parent,
    )?;
    let output = table.push_child(
        Box::new(wasmtime_wasi::p2::pipe::SinkOutputStream) as DynOutputStream,
        &parent,
    )?;
    Ok(Ok((input, output)))
}

fn remote_address(
    mut store: StoreContextMut<'_, Sandbox>,
    (socket,): (Resource<TcpSocket>,),
) -> Answer<IpSocketAddress> {
    let sandbox = store.data_mut();
    if let Some(addr) = sandbox.connections.replayed.get(&socket.rep()) {
        return Ok((Ok((*addr).into()),));
    }
    Ok((guest(sandbox.sockets().remote_address(socket))?,))
}

fn shutdown(
    mut store: StoreContextMut<'_, Sandbox>,
    (socket, how): (Resource<TcpSocket>, ShutdownType),
) -> Answer<()> {
    let sandbox = store.data_mut();
    if sandbox.connections.replayed.contains_key(&socket.rep()) {
        return Ok((Ok(()),));
    }
    Ok((guest(sandbox.sockets().shutdown(socket, how))?,))
}
