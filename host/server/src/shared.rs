//! A server or worker on a store many processes share: who this process
//! is to the others ([`Leasing`]), and its heartbeat, which renews the
//! leases it holds and stops what it no longer holds or what another
//! process canceled (or pauses what another paused).
//!
//! What it must not touch: the HTTP surface, and how an execution runs
//! (`worker`'s). Claims themselves are the queue's (`queue`).

use crate::worker::App;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use wasmflow_store::Held;

/// How this process takes part in a shared queue.
#[derive(Clone, Debug)]
pub struct Leasing {
    /// This process's name among the workers (unique per process).
    pub name: String,
    /// How long a claim holds without a heartbeat.
    pub lease: Duration,
    /// How often the heartbeat renews this process's leases.
    pub heartbeat: Duration,
    /// After this many claims lost with their worker, an execution fails
    /// with `worker-lost` instead of starting again.
    pub max_lost: u32,
}

impl Default for Leasing {
    fn default() -> Self {
        Self {
            name: default_name(),
            lease: Duration::from_secs(30),
            heartbeat: Duration::from_secs(5),
            max_lost: 3,
        }
    }
}

/// `HOST-PID`: unique among the processes of a cluster.
pub fn default_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "localhost".into());
    format!("{host}-{}", std::process::id())
}

/// Renew this process's leases every heartbeat until `stop`; an execution
/// whose lease another worker took over (this process stalled past its
/// lease) stops here without a word (not canceled: that would cancel it,
/// and a workflow's tasks, for the new holder), since it now runs there.
pub async fn heartbeat(app: Arc<App>, leasing: Leasing, concurrency: u32, stop: CancellationToken) {
    loop {
        let store = app.rt.store().clone();
        let (name, lease) = (leasing.name.clone(), leasing.lease);
        // An entry claimed after this renewal asked is not in its answer.
        let asked = std::time::SystemTime::now();
        let renewed = tokio::task::spawn_blocking(move || {
            store
                .shared_queue()
                .expect("a shared store")
                .renew(&name, concurrency, lease)
        })
        .await;
        match renewed {
            Ok(Ok(held)) => {
                let of = |f: fn(&Held) -> bool| -> HashSet<u64> {
                    held.iter().filter(|h| f(h)).map(|h| h.seq).collect()
                };
                let (canceled, paused, held) = (of(|h| h.cancel), of(|h| h.pause), of(|_| true));
                app.queue.check_ahead(&held, &canceled, asked);
                for r in app.queue.running() {
                    if canceled.contains(&r.seq) {
                        r.cancel.cancel();
                    } else if r.since < asked && !held.contains(&r.seq) {
                        tracing::warn!(
                            "execution {}: this worker's lease ran out and another took it over; stopping it here",
                            r.id
                        );
                        r.lost.cancel();
                    } else if paused.contains(&r.seq) {
                        r.pause.cancel();
                    }
                }
            }
            Ok(Err(e)) => tracing::warn!("heartbeat: {e}"),
            Err(e) => tracing::warn!("heartbeat stopped: {e}"),
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(leasing.heartbeat) => {}
        }
    }
}
