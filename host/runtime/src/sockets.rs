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
use crate::world::{put_blob, World};
use base64::Engine as _;
use bytes::Bytes;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use wasmflow_store::{
    ConnectOutcome, Datagram, Event, LookupOutcome, Question, ReadOutcome, ReceiveOutcome,
    SendOutcome,
};
use wasmtime::component::{Linker, Resource, ResourceType};
use wasmtime_wasi::p2::bindings::sockets::ip_name_lookup::{
    Host as _, HostResolveAddressStream as _, ResolveAddressStream,
};
use wasmtime_wasi::p2::bindings::sockets::network::{ErrorCode, IpAddress, IpSocketAddress};
use wasmtime_wasi::p2::bindings::sockets::tcp::{HostTcpSocket, ShutdownType};
use wasmtime_wasi::p2::bindings::sockets::tcp_create_socket::{Host as _, IpAddressFamily};
use wasmtime_wasi::p2::bindings::sockets::udp::{
    HostIncomingDatagramStream, HostOutgoingDatagramStream, IncomingDatagram,
    IncomingDatagramStream, OutgoingDatagram, OutgoingDatagramStream,
};
use wasmtime_wasi::p2::{
    DynInputStream, DynOutputStream, InputStream, Network, Pollable, SocketResult, StreamError,
    StreamResult, TcpSocket,
};
use wasmtime_wasi::sockets::WasiSocketsView;

/// The names wasmtime-wasi registers these interfaces under; guests
/// importing any 0.2.x resolve to them.
const TCP: &str = "wasi:sockets/tcp@0.2.12";
const TCP_CREATE_SOCKET: &str = "wasi:sockets/tcp-create-socket@0.2.12";
const IP_NAME_LOOKUP: &str = "wasi:sockets/ip-name-lookup@0.2.12";
const UDP: &str = "wasi:sockets/udp@0.2.12";

/// Reads up to this size are kept in the event itself; larger ones are
/// blobs, like HTTP bodies.
const INLINE_READ: usize = 4096;

/// What the sandbox knows of the guest's TCP sockets, by resource handle.
#[derive(Default)]
pub(crate) struct Connections {
    /// Sockets with a connect under way, and where to.
    connecting: HashMap<u32, SocketAddr>,
    /// Replay: sockets "connected" from the tape. wasmtime-wasi never saw
    /// the connect, so their peer address and shutdown are answered here.
    replayed: HashMap<u32, SocketAddr>,
    /// How many connections the execution has made; numbers them from 1.
    made: u32,
}

type Answer<T> = wasmtime::Result<(Result<T, ErrorCode>,)>;

pub(crate) fn add_to_linker(linker: &mut Linker<Sandbox>) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    add_tcp(linker)?;
    add_udp(linker)?;
    add_name_lookup(linker)?;
    linker.allow_shadowing(false);
    Ok(())
}

fn add_tcp(linker: &mut Linker<Sandbox>) -> wasmtime::Result<()> {
    // A fresh socket may reuse a dropped one's handle: forget that one.
    linker.instance(TCP_CREATE_SOCKET)?.func_wrap(
        "create-tcp-socket",
        |mut store, (family,): (IpAddressFamily,)| -> Answer<Resource<TcpSocket>> {
            let sandbox = store.data_mut();
            let socket = match guest(sandbox.sockets().create_tcp_socket(family))? {
                Ok(s) => s,
                Err(code) => return Ok((Err(code),)),
            };
            sandbox.connections.connecting.remove(&socket.rep());
            sandbox.connections.replayed.remove(&socket.rep());
            Ok((Ok(socket),))
        },
    )?;

    let mut tcp = linker.instance(TCP)?;
    tcp.func_wrap(
        "[method]tcp-socket.start-connect",
        |mut store,
         (socket, network, remote): (Resource<TcpSocket>, Resource<Network>, IpSocketAddress)|
         -> Answer<()> {
            let sandbox = store.data_mut();
            let addr = SocketAddr::from(remote);
            let rep = socket.rep();
            let question = Question::TcpConnect {
                address: addr.to_string(),
            };
            let result = match sandbox.world().replayed(&question) {
                Some(Err(d)) => return Err(wasmtime::Error::new(d)),
                Some(Ok(Event::TcpConnect { error, .. })) => {
                    // The network handle is the capability: it must be real.
                    sandbox.sockets().table.get(&network)?;
                    match error {
                        Some(code) => Err(error_code(&code)?),
                        None => Ok(()),
                    }
                }
                Some(Ok(other)) => unreachable!("the tape answers the question asked: {other:?}"),
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
        },
    )?;

    tcp.func_wrap(
        "[method]tcp-socket.finish-connect",
        |mut store,
         (socket,): (Resource<TcpSocket>,)|
         -> Answer<(Resource<DynInputStream>, Resource<DynOutputStream>)> {
            let sandbox = store.data_mut();
            let rep = socket.rep();
            let Some(addr) = sandbox.connections.connecting.get(&rep).copied() else {
                // No connect of ours is under way: wasmtime-wasi says so.
                let r = guest(sandbox.sockets().finish_connect(socket))?;
                return Ok((Err(r.err().unwrap_or(ErrorCode::NotInProgress)),));
            };
            let world = sandbox.world().clone();
            let question = Question::TcpFinishConnect {
                address: addr.to_string(),
            };
            let outcome = match world.replayed(&question) {
                Some(Err(d)) => return Err(wasmtime::Error::new(d)),
                Some(Ok(Event::TcpFinishConnect { outcome, .. })) => outcome,
                Some(Ok(other)) => unreachable!("the tape answers the question asked: {other:?}"),
                None => {
                    let result = match guest(sandbox.sockets().finish_connect(socket))? {
                        Ok((input, output)) => {
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
                            let input =
                                table.push_child(Box::new(recorded) as DynInputStream, &parent)?;
                            world.record(Event::TcpFinishConnect {
                                address: addr.to_string(),
                                outcome: ConnectOutcome::Connected { connection },
                            });
                            Ok((input, output))
                        }
                        Err(code) => {
                            world.record(Event::TcpFinishConnect {
                                address: addr.to_string(),
                                outcome: ConnectOutcome::Error(error_name(code).into()),
                            });
                            Err(code)
                        }
                    };
                    settle(sandbox, rep, addr, &result, false);
                    return Ok((result,));
                }
            };
            // Replay: the recorded answer, with streams that play the
            // recorded reads back and drop what is written.
            let result = match outcome {
                ConnectOutcome::Connected { connection } => {
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
                    Ok((input, output))
                }
                ConnectOutcome::Error(code) => Err(error_code(&code)?),
            };
            settle(sandbox, rep, addr, &result, true);
            Ok((result,))
        },
    )?;

    tcp.func_wrap(
        "[method]tcp-socket.remote-address",
        |mut store, (socket,): (Resource<TcpSocket>,)| -> Answer<IpSocketAddress> {
            let sandbox = store.data_mut();
            if let Some(addr) = sandbox.connections.replayed.get(&socket.rep()) {
                return Ok((Ok((*addr).into()),));
            }
            Ok((guest(sandbox.sockets().remote_address(socket))?,))
        },
    )?;

    tcp.func_wrap(
        "[method]tcp-socket.shutdown",
        |mut store, (socket, how): (Resource<TcpSocket>, ShutdownType)| -> Answer<()> {
            let sandbox = store.data_mut();
            if sandbox.connections.replayed.contains_key(&socket.rep()) {
                return Ok((Ok(()),));
            }
            Ok((guest(sandbox.sockets().shutdown(socket, how))?,))
        },
    )?;
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

/// After a `finish-connect` answer: a connect that ended (either way) is
/// no longer under way; `would-block` means it still is.
fn settle<T>(
    sandbox: &mut Sandbox,
    rep: u32,
    addr: SocketAddr,
    result: &Result<T, ErrorCode>,
    replay: bool,
) {
    if matches!(result, Err(ErrorCode::WouldBlock)) {
        return;
    }
    sandbox.connections.connecting.remove(&rep);
    if replay && result.is_ok() {
        sandbox.connections.replayed.insert(rep, addr);
    }
}

/// A connection's input stream, live: reads pass through and are recorded.
struct RecordedInput {
    inner: DynInputStream,
    world: World,
    connection: u32,
}

impl RecordedInput {
    fn record(&self, read: &StreamResult<Bytes>) {
        let Some(store) = self.world.recording_store() else {
            return;
        };
        let outcome = match read {
            Ok(b) if b.len() > INLINE_READ => {
                if !self.world.count_blob(b.len()) {
                    return;
                }
                ReadOutcome::Blob {
                    digest: put_blob(&store, b),
                }
            }
            Ok(b) => ReadOutcome::Data {
                bytes: base64::engine::general_purpose::STANDARD.encode(b),
            },
            Err(StreamError::Closed) => ReadOutcome::Closed,
            Err(StreamError::LastOperationFailed(e)) => ReadOutcome::Failed(
                e.downcast_ref::<ErrorCode>()
                    .map(|c| error_name(*c).to_owned())
                    .unwrap_or_else(|| e.to_string()),
            ),
            // A trap ends the execution; there is nothing to answer later.
            Err(StreamError::Trap(_)) => return,
        };
        self.world.record(Event::TcpRead {
            connection: self.connection,
            outcome,
        });
    }
}

#[async_trait::async_trait]
impl Pollable for RecordedInput {
    async fn ready(&mut self) {
        self.inner.ready().await
    }
}

// Each call the guest makes is one event. `skip` reads, so that the bytes
// it passed over are recorded like any others; the blocking calls are
// recorded once, with what the guest finally got, not per wake-up.
#[async_trait::async_trait]
impl InputStream for RecordedInput {
    fn read(&mut self, size: usize) -> StreamResult<Bytes> {
        let r = self.inner.read(size);
        self.record(&r);
        r
    }

    async fn blocking_read(&mut self, size: usize) -> StreamResult<Bytes> {
        let r = self.inner.blocking_read(size).await;
        self.record(&r);
        r
    }

    fn skip(&mut self, size: usize) -> StreamResult<usize> {
        self.read(size).map(|b| b.len())
    }

    async fn blocking_skip(&mut self, size: usize) -> StreamResult<usize> {
        self.blocking_read(size).await.map(|b| b.len())
    }

    async fn cancel(&mut self) {
        self.inner.cancel().await
    }
}

/// A connection's input stream in replay: the recorded reads, in order.
struct ReplayedInput {
    world: World,
    connection: u32,
}

impl ReplayedInput {
    fn next(&self, size: usize) -> StreamResult<Bytes> {
        let question = Question::TcpRead {
            connection: self.connection,
        };
        let outcome = match self.world.replayed(&question) {
            Some(Ok(Event::TcpRead { outcome, .. })) => outcome,
            Some(Ok(other)) => unreachable!("the tape answers the question asked: {other:?}"),
            Some(Err(d)) => return Err(StreamError::Trap(wasmtime::Error::new(d))),
            None => return Err(StreamError::Closed),
        };
        let bytes = match outcome {
            ReadOutcome::Data { bytes } => base64::engine::general_purpose::STANDARD
                .decode(bytes)
                .map_err(|e| StreamError::Trap(wasmtime::format_err!("recorded read: {e}")))?,
            ReadOutcome::Blob { digest } => self.world.recorded_blob(&digest).ok_or_else(|| {
                StreamError::Trap(wasmtime::format_err!("recorded read {digest} is missing"))
            })?,
            ReadOutcome::Closed => return Err(StreamError::Closed),
            ReadOutcome::Failed(e) => {
                return Err(StreamError::LastOperationFailed(match error_code(&e) {
                    Ok(code) => wasmtime::Error::new(code),
                    Err(_) => wasmtime::format_err!("{e}"),
                }))
            }
        };
        if bytes.len() > size {
            // The guest asked for less than it got live: another build.
            return Err(StreamError::Trap(wasmtime::format_err!(
                "replay: the guest read at most {size} bytes from TCP connection {}, \
                 the recorded read returned {}",
                self.connection,
                bytes.len()
            )));
        }
        Ok(bytes.into())
    }
}

#[async_trait::async_trait]
impl Pollable for ReplayedInput {
    async fn ready(&mut self) {}
}

#[async_trait::async_trait]
impl InputStream for ReplayedInput {
    fn read(&mut self, size: usize) -> StreamResult<Bytes> {
        self.next(size)
    }

    async fn blocking_read(&mut self, size: usize) -> StreamResult<Bytes> {
        self.next(size)
    }

    fn skip(&mut self, size: usize) -> StreamResult<usize> {
        self.next(size).map(|b| b.len())
    }

    async fn blocking_skip(&mut self, size: usize) -> StreamResult<usize> {
        self.next(size).map(|b| b.len())
    }
}

fn add_udp(linker: &mut Linker<Sandbox>) -> wasmtime::Result<()> {
    let mut udp = linker.instance(UDP)?;
    udp.func_wrap(
        "[method]outgoing-datagram-stream.send",
        |mut store,
         (this, datagrams): (Resource<OutgoingDatagramStream>, Vec<OutgoingDatagram>)|
         -> Answer<u64> {
            let sandbox = store.data_mut();
            let to: Vec<String> = datagrams
                .iter()
                .map(|d| match d.remote_address {
                    Some(a) => SocketAddr::from(a).to_string(),
                    None => "connected".to_owned(),
                })
                .collect();
            let question = Question::UdpSend { to: to.clone() };
            let outcome = match sandbox.world().replayed(&question) {
                Some(Err(d)) => return Err(wasmtime::Error::new(d)),
                Some(Ok(Event::UdpSend { outcome, .. })) => outcome,
                Some(Ok(other)) => unreachable!("the tape answers the question asked: {other:?}"),
                None => {
                    let outcome = match guest(sandbox.sockets().send(this, datagrams))? {
                        Ok(n) => SendOutcome::Sent(n),
                        Err(code) => SendOutcome::Error(error_name(code).into()),
                    };
                    sandbox.world().record(Event::UdpSend {
                        to,
                        outcome: outcome.clone(),
                    });
                    outcome
                }
            };
            Ok((match outcome {
                SendOutcome::Sent(n) => Ok(n),
                SendOutcome::Error(code) => Err(error_code(&code)?),
            },))
        },
    )?;
    udp.func_wrap(
        "[method]incoming-datagram-stream.receive",
        |mut store,
         (this, max): (Resource<IncomingDatagramStream>, u64)|
         -> Answer<Vec<IncomingDatagram>> {
            let sandbox = store.data_mut();
            let outcome = match sandbox.world().replayed(&Question::UdpReceive) {
                Some(Err(d)) => return Err(wasmtime::Error::new(d)),
                Some(Ok(Event::UdpReceive { outcome })) => outcome,
                Some(Ok(other)) => unreachable!("the tape answers the question asked: {other:?}"),
                None => {
                    let outcome = match guest(sandbox.sockets().receive(this, max))? {
                        Ok(datagrams) => ReceiveOutcome::Datagrams(
                            datagrams
                                .into_iter()
                                .map(|d| Datagram {
                                    data: base64::engine::general_purpose::STANDARD.encode(d.data),
                                    from: SocketAddr::from(d.remote_address).to_string(),
                                })
                                .collect(),
                        ),
                        Err(code) => ReceiveOutcome::Error(error_name(code).into()),
                    };
                    sandbox.world().record(Event::UdpReceive {
                        outcome: outcome.clone(),
                    });
                    outcome
                }
            };
            Ok((match outcome {
                ReceiveOutcome::Datagrams(ds) => Ok(ds
                    .into_iter()
                    .map(incoming)
                    .collect::<wasmtime::Result<Vec<_>>>()?),
                ReceiveOutcome::Error(code) => Err(error_code(&code)?),
            },))
        },
    )?;
    // In replay nothing arrives on the real socket: the recorded receives
    // are ready at once. (The `Ready` each subscribe pushes stays in the
    // table until the execution ends; a replay makes as many as the
    // recorded run made receives.)
    udp.func_wrap(
        "[method]incoming-datagram-stream.subscribe",
        |mut store, (this,): (Resource<IncomingDatagramStream>,)| {
            let sandbox = store.data_mut();
            let replay = sandbox.world().is_replay();
            let mut view = sandbox.sockets();
            if replay {
                let ready = view.table.push(Ready)?;
                return Ok((wasmtime_wasi::p2::subscribe(view.table, ready)?,));
            }
            Ok((HostIncomingDatagramStream::subscribe(&mut view, this)?,))
        },
    )?;
    Ok(())
}

fn incoming(d: Datagram) -> wasmtime::Result<IncomingDatagram> {
    let data = base64::engine::general_purpose::STANDARD
        .decode(&d.data)
        .map_err(|e| wasmtime::format_err!("recorded datagram: {e}"))?;
    let from: SocketAddr = d
        .from
        .parse()
        .map_err(|e| wasmtime::format_err!("recorded datagram sender `{}`: {e}", d.from))?;
    Ok(IncomingDatagram {
        data,
        remote_address: from.into(),
    })
}

/// A pollable that is always ready.
struct Ready;

#[async_trait::async_trait]
impl Pollable for Ready {
    async fn ready(&mut self) {}
}

/// The answer to a name lookup, whole: live, the lookup is finished
/// before `resolve-addresses` returns, so that it can be recorded as one
/// event.
pub(crate) struct ResolvedAddresses(Result<std::vec::IntoIter<IpAddr>, ErrorCode>);

#[async_trait::async_trait]
impl Pollable for ResolvedAddresses {
    async fn ready(&mut self) {}
}

fn add_name_lookup(linker: &mut Linker<Sandbox>) -> wasmtime::Result<()> {
    let mut lookup = linker.instance(IP_NAME_LOOKUP)?;
    lookup.resource(
        "resolve-address-stream",
        ResourceType::host::<ResolvedAddresses>(),
        |mut store, rep| {
            store
                .data_mut()
                .sockets()
                .table
                .delete(Resource::<ResolvedAddresses>::new_own(rep))?;
            Ok(())
        },
    )?;
    lookup.func_wrap_async(
        "resolve-addresses",
        |mut store, (network, name): (Resource<Network>, String)| {
            Box::new(async move {
                let sandbox = store.data_mut();
                let world = sandbox.world().clone();
                let question = Question::NameLookup { name: name.clone() };
                let outcome = match world.replayed(&question) {
                    Some(Err(d)) => return Err(wasmtime::Error::new(d)),
                    Some(Ok(Event::NameLookup { outcome, .. })) => {
                        sandbox.sockets().table.get(&network)?;
                        outcome
                    }
                    Some(Ok(other)) => {
                        unreachable!("the tape answers the question asked: {other:?}")
                    }
                    None => {
                        let outcome = if sandbox.may_resolve(&name) {
                            resolve(sandbox, network, name.clone()).await?
                        } else {
                            // A lookup hands the name to the host's
                            // resolver, a way out of its own: only names a
                            // net grant names are looked up.
                            sandbox.sockets().table.get(&network)?;
                            sandbox.log_book.deny(
                                "net",
                                &format!("name lookup of {name}"),
                                &format!("not a granted host; use --allow-net {name}"),
                            );
                            LookupOutcome::Error(error_name(ErrorCode::AccessDenied).into())
                        };
                        world.record(Event::NameLookup {
                            name,
                            outcome: outcome.clone(),
                        });
                        outcome
                    }
                };
                let resolved = match outcome {
                    LookupOutcome::Addresses(addrs) => Ok(addrs
                        .iter()
                        .map(|a| a.parse::<IpAddr>())
                        .collect::<Result<Vec<_>, _>>()
                        .map_err(|e| wasmtime::format_err!("recorded address: {e}"))?
                        .into_iter()),
                    LookupOutcome::Error(code) => Err(error_code(&code)?),
                };
                // wasmtime-wasi surfaces a failed lookup at once, as here.
                let resolved = match resolved {
                    Ok(addrs) => addrs,
                    Err(code) => return Ok((Err(code),)),
                };
                let stream = sandbox
                    .sockets()
                    .table
                    .push(ResolvedAddresses(Ok(resolved)))?;
                Ok((Ok::<_, ErrorCode>(stream),))
            })
        },
    )?;
    lookup.func_wrap(
        "[method]resolve-address-stream.resolve-next-address",
        |mut store, (this,): (Resource<ResolvedAddresses>,)| -> Answer<Option<IpAddress>> {
            let stream = store.data_mut().sockets().table.get_mut(&this)?;
            Ok((match &mut stream.0 {
                Ok(addrs) => Ok(addrs.next().map(IpAddress::from)),
                Err(code) => Err(*code),
            },))
        },
    )?;
    lookup.func_wrap(
        "[method]resolve-address-stream.subscribe",
        |mut store, (this,): (Resource<ResolvedAddresses>,)| {
            let table = store.data_mut().sockets().table;
            Ok((wasmtime_wasi::p2::subscribe(table, this)?,))
        },
    )?;
    Ok(())
}

/// Live: ask wasmtime-wasi (which applies the grants) and wait for the
/// whole answer.
async fn resolve(
    sandbox: &mut Sandbox,
    network: Resource<Network>,
    name: String,
) -> wasmtime::Result<LookupOutcome> {
    let mut view = sandbox.sockets();
    let stream = match guest(view.resolve_addresses(network, name))? {
        Ok(s) => s,
        Err(code) => return Ok(LookupOutcome::Error(error_name(code).into())),
    };
    let mut addrs = Vec::new();
    let outcome = loop {
        let next = view.resolve_next_address(Resource::new_borrow(stream.rep()));
        match guest(next)? {
            Ok(Some(a)) => addrs.push(ip_string(a)),
            Ok(None) => break LookupOutcome::Addresses(addrs),
            Err(ErrorCode::WouldBlock) => {
                let pending: &mut ResolveAddressStream = view.table.get_mut(&stream)?;
                pending.ready().await;
            }
            Err(code) => break LookupOutcome::Error(error_name(code).into()),
        }
    };
    view.table.delete(stream)?;
    Ok(outcome)
}

fn ip_string(a: IpAddress) -> String {
    match a {
        IpAddress::Ipv4((a, b, c, d)) => std::net::Ipv4Addr::new(a, b, c, d).to_string(),
        IpAddress::Ipv6((a, b, c, d, e, f, g, h)) => {
            std::net::Ipv6Addr::new(a, b, c, d, e, f, g, h).to_string()
        }
    }
}

/// WASI's names for its socket error codes, as recorded.
const ERROR_CODES: [(ErrorCode, &str); 21] = [
    (ErrorCode::Unknown, "unknown"),
    (ErrorCode::AccessDenied, "access-denied"),
    (ErrorCode::NotSupported, "not-supported"),
    (ErrorCode::InvalidArgument, "invalid-argument"),
    (ErrorCode::OutOfMemory, "out-of-memory"),
    (ErrorCode::Timeout, "timeout"),
    (ErrorCode::ConcurrencyConflict, "concurrency-conflict"),
    (ErrorCode::NotInProgress, "not-in-progress"),
    (ErrorCode::WouldBlock, "would-block"),
    (ErrorCode::InvalidState, "invalid-state"),
    (ErrorCode::NewSocketLimit, "new-socket-limit"),
    (ErrorCode::AddressNotBindable, "address-not-bindable"),
    (ErrorCode::AddressInUse, "address-in-use"),
    (ErrorCode::RemoteUnreachable, "remote-unreachable"),
    (ErrorCode::ConnectionRefused, "connection-refused"),
    (ErrorCode::ConnectionReset, "connection-reset"),
    (ErrorCode::ConnectionAborted, "connection-aborted"),
    (ErrorCode::DatagramTooLarge, "datagram-too-large"),
    (ErrorCode::NameUnresolvable, "name-unresolvable"),
    (
        ErrorCode::TemporaryResolverFailure,
        "temporary-resolver-failure",
    ),
    (
        ErrorCode::PermanentResolverFailure,
        "permanent-resolver-failure",
    ),
];

fn error_name(code: ErrorCode) -> &'static str {
    ERROR_CODES
        .iter()
        .find(|(c, _)| *c == code)
        .map_or("unknown", |(_, n)| n)
}

/// A recorded error code back; a tape naming an unknown one is corrupt.
fn error_code(name: &str) -> wasmtime::Result<ErrorCode> {
    ERROR_CODES
        .iter()
        .find(|(_, n)| *n == name)
        .map(|(c, _)| *c)
        .ok_or_else(|| {
            wasmtime::format_err!("recorded socket error `{name}` is not a WASI error code")
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_codes_round_trip_by_name() {
        for (code, name) in ERROR_CODES {
            assert_eq!(error_name(code), name);
            assert_eq!(error_code(name).unwrap(), code);
        }
        assert!(error_code("no-such-code").is_err());
    }

    #[test]
    fn addresses_print_as_std_does() {
        assert_eq!(ip_string(IpAddress::Ipv4((127, 0, 0, 1))), "127.0.0.1");
        assert_eq!(ip_string(IpAddress::Ipv6((0, 0, 0, 0, 0, 0, 0, 1))), "::1");
    }
}
