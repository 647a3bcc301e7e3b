//! What an execution may reach over the network, and what it has reached:
//! the net grants as a policy (for `wasi:http` requests and socket
//! addresses) and the guest's TCP connections as `host::sockets` tracks
//! them. A leaf under the sandbox.

use crate::log_book::SharedLogBook;
use crate::world::World;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, OnceLock};
use wasmflow_store::NetGrant;
use wasmtime_wasi::sockets::SocketAddrUse;

/// Which hosts the guest may reach, over `wasi:http` and `wasi:sockets`.
#[derive(Clone)]
pub(crate) struct NetPolicy {
    grants: Vec<NetGrant>,
    /// The addresses each grant's host resolves to, looked up on the first
    /// socket check of the execution and kept for the rest of it.
    addresses: Arc<OnceLock<Vec<Vec<IpAddr>>>>,
    pub log_book: SharedLogBook,
    pub world: World,
    /// How large an HTTP response body may be (it is buffered to be
    /// recorded).
    pub body_limit: usize,
}

impl NetPolicy {
    pub fn new(
        grants: Vec<NetGrant>,
        log_book: SharedLogBook,
        world: World,
        body_limit: usize,
    ) -> Self {
        Self {
            grants,
            addresses: Arc::default(),
            log_book,
            world,
            body_limit,
        }
    }

    /// Whether the guest may have `name` looked up: only a name a net
    /// grant names (a grant of a literal address allows no other lookups).
    pub fn may_resolve(&self, name: &str) -> bool {
        let name = name.trim_end_matches('.');
        self.grants
            .iter()
            .any(|g| g.host.eq_ignore_ascii_case(name))
    }

    pub fn allows_host(&self, host: &str, port: u16) -> bool {
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_ascii_lowercase();
        self.grants
            .iter()
            .any(|g| g.host == host && g.port.is_none_or(|p| p == port))
    }

    /// Sockets see addresses, not names: a grant matches an address it names
    /// literally or that its host name resolves to.
    pub fn allows_socket(&self, addr: SocketAddr, usage: SocketAddrUse) -> bool {
        if matches!(usage, SocketAddrUse::TcpBind | SocketAddrUse::UdpBind) {
            // Binding (including the implicit bind of connect) is harmless;
            // what matters is where traffic goes.
            return true;
        }
        let addresses = self
            .addresses
            .get_or_init(|| self.grants.iter().map(|g| host_addrs(&g.host)).collect());
        let ok =
            self.grants.iter().zip(addresses).any(|(g, ips)| {
                g.port.is_none_or(|p| p == addr.port()) && ips.contains(&addr.ip())
            });
        if !ok {
            self.log_book.deny(
                "net",
                &addr.to_string(),
                "not granted; use --allow-net HOST[:PORT]",
            );
        }
        ok
    }
}

fn host_addrs(host: &str) -> Vec<IpAddr> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return vec![ip];
    }
    use std::net::ToSocketAddrs;
    (host, 0)
        .to_socket_addrs()
        .map(|it| it.map(|a| a.ip()).collect())
        .unwrap_or_default()
}

/// What the sandbox knows of the guest's TCP sockets, by resource handle.
#[derive(Default)]
pub(crate) struct Connections {
    /// Sockets with a connect under way, and where to.
    pub connecting: HashMap<u32, SocketAddr>,
    /// Replay: sockets "connected" from the tape. wasmtime-wasi never saw
    /// the connect, so their peer address and shutdown are answered here.
    pub replayed: HashMap<u32, SocketAddr>,
    /// How many connections the execution has made; numbers them from 1.
    pub made: u32,
}
