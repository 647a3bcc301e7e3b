//! `wasi:sockets/udp` per call: each `send` (where to, how many went) and
//! each `receive` (the datagrams, none included) is one question. In
//! replay a send reaches nobody and a receive returns the recorded
//! datagrams.

use super::codes::{error_code, error_name};
use super::{guest, Answer, UDP};
use crate::sandbox::Sandbox;
use base64::Engine as _;
use std::net::SocketAddr;
use wasmflow_store::{Datagram, Event, Question, ReceiveOutcome, SendOutcome};
use wasmtime::component::{Linker, Resource};
use wasmtime::StoreContextMut;
use wasmtime_wasi::p2::bindings::sockets::udp::{
    HostIncomingDatagramStream, HostOutgoingDatagramStream, IncomingDatagram,
    IncomingDatagramStream, OutgoingDatagram, OutgoingDatagramStream,
};
use wasmtime_wasi::p2::Pollable;
use wasmtime_wasi::sockets::WasiSocketsView;

pub(super) fn add_to_linker(linker: &mut Linker<Sandbox>) -> wasmtime::Result<()> {
    let mut udp = linker.instance(UDP)?;
    udp.func_wrap("[method]outgoing-datagram-stream.send", send)?;
    udp.func_wrap("[method]incoming-datagram-stream.receive", receive)?;
    udp.func_wrap("[method]incoming-datagram-stream.subscribe", subscribe)?;
    Ok(())
}

fn send(
    mut store: StoreContextMut<'_, Sandbox>,
    (this, datagrams): (Resource<OutgoingDatagramStream>, Vec<OutgoingDatagram>),
) -> Answer<u64> {
    let sandbox = store.data_mut();
    let to: Vec<String> = datagrams
        .iter()
        .map(|d| match d.remote_address {
            Some(a) => SocketAddr::from(a).to_string(),
            None => "connected".to_owned(),
        })
        .collect();
    let question = Question::UdpSend { to: to.clone() };
    let recorded = sandbox.world().recorded(&question, |e| match e {
        Event::UdpSend { outcome, .. } => Some(outcome),
        _ => None,
    })?;
    let outcome = match recorded {
        Some(outcome) => outcome,
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
}

fn receive(
    mut store: StoreContextMut<'_, Sandbox>,
    (this, max): (Resource<IncomingDatagramStream>, u64),
) -> Answer<Vec<IncomingDatagram>> {
    let sandbox = store.data_mut();
    let recorded = sandbox
        .world()
        .recorded(&Question::UdpReceive, |e| match e {
            Event::UdpReceive { outcome } => Some(outcome),
            _ => None,
        })?;
    let outcome = match recorded {
        Some(outcome) => outcome,
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
}

/// In replay nothing arrives on the real socket: the recorded receives
/// are ready at once. (The `Ready` each subscribe pushes stays in the
/// table until the execution ends; a replay makes as many as the recorded
/// run made receives.)
fn subscribe(
    mut store: StoreContextMut<'_, Sandbox>,
    (this,): (Resource<IncomingDatagramStream>,),
) -> wasmtime::Result<(Resource<wasmtime_wasi::p2::DynPollable>,)> {
    let sandbox = store.data_mut();
    let replay = sandbox.world().is_replay();
    let mut view = sandbox.sockets();
    if replay {
        let ready = view.table.push(Ready)?;
        return Ok((wasmtime_wasi::p2::subscribe(view.table, ready)?,));
    }
    Ok((HostIncomingDatagramStream::subscribe(&mut view, this)?,))
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
