//! Leases on the queue, for a store many processes share: a worker
//! claims the oldest entry nobody holds (or whose holder's lease ran
//! out), renews its leases with a heartbeat, and lets go of them when it
//! stops. Time is the store's clock, one for every process, so a lease's
//! expiry does not depend on whose clock is right.
//!
//! Only a shared store keeps leases ([`crate::Backend::shared_queue`]):
//! an embedded store has one opener, whose own memory knows what it runs.
//! What a worker does with a claim (run it, start it over, resume a
//! workflow, give up after too many lost attempts) is the server's.

use crate::error::StoreError;
use crate::record::{ExecutionId, Kind};
use crate::store::Queued;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};
use tokio::sync::Notify;

/// A claim on its way ([`SharedQueue::claim`]).
pub type Claiming = std::pin::Pin<
    Box<dyn std::future::Future<Output = Result<Vec<Claimed>, StoreError>> + Send + 'static>,
>;

/// A queue whose entries processes hold under leases.
pub trait SharedQueue: Send + Sync {
    /// Take the oldest entries of `kind` nobody holds or whose lease has
    /// expired, up to one per slot of `slots`, for `lease` from now, on
    /// behalf of `worker`: the oldest for `slots[0]`, the next for
    /// `slots[1]`, ... One winner per entry, however many claim at once.
    /// Workflows and actions are claimed apart: a workflow waits on its
    /// tasks, which are entries too, so slots that run actions must never
    /// all be taken by workflows.
    ///
    /// Asynchronous, unlike the rest of the interface: a claim is on the
    /// path of every execution a worker starts, and a caller inside a
    /// runtime awaits it without a blocking thread in between.
    ///
    /// `ahead` more entries may be taken after those, held for no slot yet
    /// (`slot` None): a worker with a backlog before it takes the work of
    /// its next few slots in the same statement.
    fn claim(
        &self,
        worker: &str,
        slots: &[u32],
        ahead: usize,
        lease: Duration,
        kind: Kind,
    ) -> Claiming;
    /// [`crate::store::Backend::accept`] on this queue, but each entry
    /// given a slot in `slots` is held from the start by `worker` for that
    /// slot for `lease`, as if it had claimed it: a process with idle
    /// slots runs what it accepts itself, without a claim. Only the
    /// entries nobody holds wake other processes' workers.
    fn accept_holding(
        &self,
        entries: &[(&crate::ExecutionRecord, &[u8])],
        slots: &[Option<u32>],
        worker: &str,
        lease: Duration,
    ) -> Result<Vec<u64>, StoreError>;
    /// [`SharedQueue::claim`] for one slot, waiting for it.
    fn claim_one(
        &self,
        worker: &str,
        slot: u32,
        lease: Duration,
        kind: Kind,
    ) -> Result<Option<Claimed>, StoreError>;
    /// Whether `id` has an entry in the queue (waiting or held).
    fn holds(&self, id: ExecutionId) -> Result<bool, StoreError>;
    /// The heartbeat: `worker` (running `concurrency` slots) is alive, and
    /// every lease it holds runs `lease` from now. Returns the entries it
    /// still holds: one missing was taken over after its lease expired,
    /// and its holder must stop running it; one marked `cancel` was
    /// canceled from another process.
    fn renew(
        &self,
        worker: &str,
        concurrency: u32,
        lease: Duration,
    ) -> Result<Vec<Held>, StoreError>;
    /// Cancel the execution `id` wherever it is: an entry nobody holds
    /// leaves the queue; a held one is marked for its holder, which hears
    /// of it at its next heartbeat.
    fn cancel(&self, id: ExecutionId) -> Result<Cancel, StoreError>;
    /// Pause the workflow execution `id` where it runs: a held entry is
    /// marked for its holder, which hears of it at its next heartbeat.
    /// Returns the holder; None when nobody holds it (nothing runs it).
    fn pause(&self, id: ExecutionId) -> Result<Option<String>, StoreError>;
    /// Lead the periodic sweep `sweep` for `lease` from now, on behalf of
    /// `worker`: true when `worker` leads it already or nobody's lead is
    /// current, so one process of many does each round.
    fn lead(&self, sweep: &str, worker: &str, lease: Duration) -> Result<bool, StoreError>;
    /// `worker` stops: its leases end now (what it still held is
    /// claimable at once, not after expiry) and it leaves the list.
    fn leave(&self, worker: &str) -> Result<(), StoreError>;
    /// Take the unprocessed trigger instance `id` for `lease` from now, on
    /// behalf of `worker`, to enforce its rules: the event a crashed
    /// server left. One winner however many try; none while another's
    /// claim runs; none once it is processed.
    fn claim_trigger(
        &self,
        id: ExecutionId,
        worker: &str,
        lease: Duration,
    ) -> Result<bool, StoreError>;
    /// The entries of the queue, oldest first, each with its lease.
    fn entries(&self) -> Result<Vec<Entry>, StoreError>;
    /// Every worker that has sent a heartbeat and not left, by name.
    fn workers(&self) -> Result<Vec<Worker>, StoreError>;
    /// Woken (every waiter at once) when any process adds an entry of
    /// `kind` or lets go of some, so an idle worker claims at once instead
    /// of at its next poll. A lease running out wakes nobody: workers poll
    /// for those. An arrival of actions does not wake the workers waiting
    /// for workflows (their claim would find nothing), nor the reverse.
    fn arrivals(&self, kind: Kind) -> Arc<Notify>;
    /// Waiters for the end of a workflow's queued tasks (entries of
    /// records with a parent): woken when any process takes such an entry
    /// out of the queue, which it does once the record is final and
    /// durable. A top-level execution's end tells no one (nothing waits
    /// for it this way: a follower reads its record).
    fn endings(&self) -> Arc<Endings>;
}

/// Who waits for which queued execution to end (see
/// [`SharedQueue::endings`]). A watch keeps a wake-up that came before
/// its waiter awaited it, so checking the record and then waiting loses
/// none; a missed notification (the listener reconnecting) wakes all.
#[derive(Default)]
pub struct Endings {
    waiting: Mutex<HashMap<ExecutionId, Arc<Notify>>>,
}

impl Endings {
    /// Watch for `id` to leave the queue, until the watch is dropped. One
    /// watcher per execution (the workflow that queued it).
    pub fn watch(self: &Arc<Self>, id: ExecutionId) -> Watch {
        let notify = Arc::new(Notify::new());
        self.lock().insert(id, notify.clone());
        Watch {
            endings: self.clone(),
            id,
            notify,
        }
    }

    /// `id` left the queue.
    pub fn ended(&self, id: ExecutionId) {
        if let Some(n) = self.lock().get(&id) {
            n.notify_one();
        }
    }

    /// Something may have been missed: every waiter looks again.
    pub fn wake_all(&self) {
        for n in self.lock().values() {
            n.notify_one();
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<ExecutionId, Arc<Notify>>> {
        self.waiting.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A watch on one execution's end ([`Endings::watch`]).
pub struct Watch {
    endings: Arc<Endings>,
    id: ExecutionId,
    notify: Arc<Notify>,
}

impl Watch {
    /// Until the next wake-up (or at once, for one that came meanwhile).
    pub async fn woken(&self) {
        self.notify.notified().await
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        self.endings.lock().remove(&self.id);
    }
}

/// A claim won: the entry, and what happened to it before.
#[derive(Clone, Debug)]
pub struct Claimed {
    pub entry: Queued,
    /// The slot it was claimed for; None when claimed ahead, for whichever
    /// slot of its worker frees first.
    pub slot: Option<u32>,
    /// How many times it has been claimed, this one included.
    pub claims: u32,
    /// How many of those claims ended with the holder's lease expiring.
    pub lost: u32,
    /// The worker whose lease expired, when this claim takes over from it.
    pub lost_by: Option<String>,
    /// Its record as the claim found it (read with the claim: one round
    /// trip fewer per execution); None when it is gone (purged).
    pub record: Option<Box<crate::ExecutionRecord>>,
}

/// An entry a worker still holds, as its heartbeat hears.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Held {
    pub seq: u64,
    /// Canceled from another process: stop it.
    pub cancel: bool,
    /// Paused from another process: start no more of its tasks.
    pub pause: bool,
}

/// What [`SharedQueue::cancel`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Cancel {
    /// Nobody held it: out of the queue, never to start.
    Withdrawn,
    /// `worker` holds it and is told.
    Requested { worker: String },
    /// It is not in the queue (it ended, or never was).
    NotQueued,
}

/// A queue entry and who holds it.
#[derive(Clone, Debug)]
pub struct Entry {
    pub seq: u64,
    pub id: ExecutionId,
    pub lease: Option<Lease>,
    /// Its record, read with the entries (a view of a queue holding a
    /// fan-out's thousand tasks is one round trip); None when it is gone.
    pub record: Option<Box<crate::ExecutionRecord>>,
}

#[derive(Clone, Debug)]
pub struct Lease {
    pub worker: String,
    /// None while it is held ahead, for the worker's next free slot.
    pub slot: Option<u32>,
    /// When it was claimed.
    pub since: SystemTime,
    /// Whether its holder has stopped renewing it.
    pub expired: bool,
}

/// A worker process, as its heartbeats say.
#[derive(Clone, Debug)]
pub struct Worker {
    pub name: String,
    pub started_at: SystemTime,
    pub heartbeat: SystemTime,
    /// How long ago the last heartbeat was, on the store's clock.
    pub silent_for: Duration,
    pub concurrency: u32,
    /// What it holds, oldest first.
    pub running: Vec<ExecutionId>,
}
