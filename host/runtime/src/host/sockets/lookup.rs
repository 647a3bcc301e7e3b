//! `wasi:sockets/ip-name-lookup`: a lookup is one question, answered
//! whole. Only names a net grant names are looked up (the host's resolver
//! is a way out of its own); in replay the recorded addresses come back.

use super::codes::{error_code, error_name};
use super::{guest, Answer, IP_NAME_LOOKUP};
use crate::sandbox::Sandbox;
use std::future::Future;
use std::net::IpAddr;
use wasmflow_store::{Event, LookupOutcome, Question};
use wasmtime::component::{Linker, Resource, ResourceType};
use wasmtime::StoreContextMut;
use wasmtime_wasi::p2::bindings::sockets::ip_name_lookup::{
    Host as _, HostResolveAddressStream as _, ResolveAddressStream,
};
use wasmtime_wasi::p2::bindings::sockets::network::{ErrorCode, IpAddress};
use wasmtime_wasi::p2::{DynPollable, Network, Pollable};
use wasmtime_wasi::sockets::WasiSocketsView;

pub(super) fn add_to_linker(linker: &mut Linker<Sandbox>) -> wasmtime::Result<()> {
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
    lookup.func_wrap_async("resolve-addresses", resolve_addresses)?;
    lookup.func_wrap(
        "[method]resolve-address-stream.resolve-next-address",
        resolve_next_address,
    )?;
    lookup.func_wrap("[method]resolve-address-stream.subscribe", subscribe)?;
    Ok(())
}

/// The answer to a name lookup, whole: live, the lookup is finished
/// before `resolve-addresses` returns, so that it can be recorded as one
/// event.
struct ResolvedAddresses(std::vec::IntoIter<IpAddr>);

#[async_trait::async_trait]
impl Pollable for ResolvedAddresses {
    async fn ready(&mut self) {}
}

fn resolve_addresses(
    mut store: StoreContextMut<'_, Sandbox>,
    (network, name): (Resource<Network>, String),
) -> Box<dyn Future<Output = Answer<Resource<ResolvedAddresses>>> + Send + '_> {
    Box::new(async move {
        let sandbox = store.data_mut();
        let world = sandbox.world().clone();
        let question = Question::NameLookup { name: name.clone() };
        let recorded = world.recorded(&question, |e| match e {
            Event::NameLookup { outcome, .. } => Some(outcome),
            _ => None,
        })?;
        let outcome = match recorded {
            Some(outcome) => {
                sandbox.sockets().table.get(&network)?;
                outcome
            }
            None => {
                let outcome = if sandbox.net.may_resolve(&name) {
                    resolve(sandbox, network, name.clone()).await?
                } else {
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
        // wasmtime-wasi surfaces a failed lookup at once, as here.
        let addrs = match outcome {
            LookupOutcome::Addresses(addrs) => addrs
                .iter()
                .map(|a| a.parse::<IpAddr>())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| wasmtime::format_err!("recorded address: {e}"))?,
            LookupOutcome::Error(code) => return Ok((Err(error_code(&code)?),)),
        };
        let stream = sandbox
            .sockets()
            .table
            .push(ResolvedAddresses(addrs.into_iter()))?;
        Ok((Ok(stream),))
    })
}

fn resolve_next_address(
    mut store: StoreContextMut<'_, Sandbox>,
    (this,): (Resource<ResolvedAddresses>,),
) -> Answer<Option<IpAddress>> {
    let stream = store.data_mut().sockets().table.get_mut(&this)?;
    Ok((Ok(stream.0.next().map(IpAddress::from)),))
}

fn subscribe(
    mut store: StoreContextMut<'_, Sandbox>,
    (this,): (Resource<ResolvedAddresses>,),
) -> wasmtime::Result<(Resource<DynPollable>,)> {
    let table = store.data_mut().sockets().table;
    Ok((wasmtime_wasi::p2::subscribe(table, this)?,))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_print_as_std_does() {
        assert_eq!(ip_string(IpAddress::Ipv4((127, 0, 0, 1))), "127.0.0.1");
        assert_eq!(ip_string(IpAddress::Ipv6((0, 0, 0, 0, 0, 0, 0, 1))), "::1");
    }
}
