//! The bounded, durable queue of accepted executions.
//!
//! Accepting writes the pending record and its queue entry and waits for
//! them to be on disk before the client hears 202; an action's end (its
//! record and events) is written, made durable and its entry dropped in
//! that order. Both are grouped (`batch`): every accept, and every end,
//! waiting at the same time is one write and one fsync (one statement on
//! a shared store). An entry leaves the queue only after its record is
//! final, so a restart finds every accepted execution that has not ended
//! and runs it again under the same id. Workers take entries in
//! accept order. This module keeps the in-memory view (who waits, who runs
//! where) that `GET /api/v1/queue` shows; running them is `worker`'s.
//!
//! On a store many processes share ([`Leasing`]), the queue is the
//! store's: accepting only writes the entry, a worker takes the next one
//! by claiming it (a lease its process's heartbeat renews), and the view
//! is read from the store, so it shows every process's work. Nothing is
//! restored at start: what a stopped process held is claimable again once
//! its lease runs out. Two shortcuts save the claim's statement: an
//! accept hands its entry, already held, to an idle slot of its own
//! process; and with a backlog of short actions a claim takes the next
//! few entries ahead for this process's slots (see [`Queue::claim`]).

use crate::batch::Batcher;
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use utoipa::ToSchema;

pub use crate::shared::Leasing;

/// How old the shared queue's count may be when an accept checks the
/// capacity against it.
const COUNT_EVERY: Duration = Duration::from_millis(250);

/// A worker claims entries ahead of its slots (see [`Queue::claim`]) only
/// while its actions end within this: for them a claim's round trip is a
/// share of the work, and an entry held ahead waits about this long.
const AHEAD_UNDER: Duration = Duration::from_millis(20);

/// How long a worker with nothing to claim waits before asking again,
/// unless an arrival wakes it first: what it finds by polling is work
/// whose lease ran out.
const IDLE_POLL: Duration = Duration::from_millis(250);
use wasmflow_runtime::Ended;
use wasmflow_store::{ExecutionId, ExecutionRecord, Kind, Status, Store, StoreError};

/// What a queue entry carries besides its record.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Payload {
    /// `re-run` with `from`: the task to start again from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// A paused workflow queued to go on (`POST .../resume`); without it a
    /// paused workflow found in the queue stays paused.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub resume: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum AcceptError {
    #[error("the queue is full ({0} executions waiting or running); try again later")]
    Full(usize),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A worker's claim on one queued execution: what the queue hands out
/// (not the scheduler's `Job`, one attempt of a workflow task).
#[derive(Clone, Debug)]
pub struct Ticket {
    pub seq: u64,
    pub id: ExecutionId,
    /// On a shared store: how many earlier holders were lost (their lease
    /// ran out), and the last of them.
    pub lost: u32,
    pub lost_by: Option<String>,
    /// Its record as a shared queue's claim read it.
    pub record: Option<Box<ExecutionRecord>>,
}

impl Ticket {
    fn local(seq: u64, id: ExecutionId) -> Self {
        Self {
            seq,
            id,
            lost: 0,
            lost_by: None,
            record: None,
        }
    }
}

#[derive(Clone, Debug)]
pub enum EntryState {
    Pending,
    Running { worker: usize, since: SystemTime },
}

/// What the queue holds for one accepted execution until it ends (not
/// the scheduler's `Slot`, one item of a workflow task).
#[derive(Clone, Debug)]
pub struct QueueEntry {
    pub seq: u64,
    pub action: String,
    pub kind: Kind,
    pub accepted_at: SystemTime,
    pub state: EntryState,
    pub cancel: CancellationToken,
    /// Pauses a workflow (its running tasks finish, none starts).
    pub pause: CancellationToken,
    /// On a shared store: another worker took it over (this process's
    /// lease ran out while it stalled). Its run here stops without
    /// writing anything: the record, the tasks and the entry are the new
    /// holder's.
    pub lost: CancellationToken,
    pub payload: Payload,
}

/// An execution this process runs: its queue position, since when, and
/// how to stop or pause it.
#[derive(Clone, Debug)]
pub struct Running {
    pub id: ExecutionId,
    pub seq: u64,
    pub since: SystemTime,
    pub cancel: CancellationToken,
    pub pause: CancellationToken,
    pub lost: CancellationToken,
}

/// `GET /api/v1/queue`.
#[derive(Debug, Serialize, ToSchema)]
pub struct QueueView {
    pub capacity: usize,
    pub workers: usize,
    pub pending: Vec<QueueItem>,
    pub running: Vec<QueueItem>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct QueueItem {
    pub id: String,
    pub action: String,
    /// Milliseconds since it was accepted.
    pub waited_ms: u64,
    /// The worker running it (running ones only): its slot in its process.
    /// None on a shared store while its process holds it claimed ahead,
    /// for its next slot to free (a few milliseconds, short actions only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub worker: Option<usize>,
    /// The process running it, on a shared store (running ones only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub process: Option<String>,
    /// Milliseconds since it started (running ones only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub running_ms: Option<u64>,
    /// A workflow's task (queued by its workflow on a shared store): the
    /// workflow execution's id and the task (`name` or `name[i]`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub task: Option<String>,
}

/// `GET /api/v1/workers`: one worker process.
#[derive(Debug, Serialize, ToSchema)]
pub struct WorkerView {
    pub name: String,
    /// RFC 3339.
    pub started_at: String,
    /// Milliseconds since its last heartbeat.
    pub heartbeat_ms: u64,
    /// Whether its heartbeat is within its lease (else it is lost, and
    /// what it held is taken over).
    pub alive: bool,
    pub concurrency: u32,
    /// What it runs, by execution id, oldest first.
    pub running: Vec<String>,
}

impl WorkerView {
    /// A worker as the store knows it; `alive` while its last heartbeat is
    /// within `lease`.
    pub fn of(w: wasmflow_store::Worker, lease: Duration) -> Self {
        Self {
            started_at: humantime::format_rfc3339_seconds(w.started_at).to_string(),
            heartbeat_ms: w.silent_for.as_millis() as u64,
            alive: w.silent_for < lease,
            concurrency: w.concurrency,
            running: w.running.iter().map(|id| id.to_string()).collect(),
            name: w.name,
        }
    }
}

/// Slots of this process waiting for work of one kind, and where to
/// send each the entry claimed for it.
type Waiting = Mutex<Vec<(usize, oneshot::Sender<Ticket>)>>;

pub struct Queue {
    store: Store,
    capacity: usize,
    workers: usize,
    /// Set on a shared store: this process's part in it.
    shared: Option<Leasing>,
    /// When this queue (this process's server) started.
    started: SystemTime,
    /// On a shared store: the entries last counted, when, and those
    /// accepted here since.
    counted: Mutex<(Option<std::time::Instant>, usize)>,
    entries: Mutex<HashMap<ExecutionId, QueueEntry>>,
    tickets_tx: mpsc::UnboundedSender<Ticket>,
    tickets_rx: tokio::sync::Mutex<mpsc::UnboundedReceiver<Ticket>>,
    /// Group commit of flushes, each maybe with an ended execution.
    flusher: Batcher<Flush, ()>,
    /// Group commit of accepts: their entries and records.
    acceptor: Batcher<Accepted, u64>,
    /// Slots waiting to claim actions (0) and workflows (1) on a shared
    /// store; an accept hands its entry to an idle action slot of these.
    claims: [Waiting; 2],
    /// The ends being written ([`Queue::ending`]): shutdown waits for them.
    ending: tokio_util::task::TaskTracker,
    /// Actions claimed ahead of this process's slots on a shared store,
    /// oldest first, for the next slot that frees.
    ahead: Mutex<std::collections::VecDeque<Ahead>>,
    /// Whether the last action claim found an entry for everything it
    /// asked for (a backlog), and whether the last action that ended here
    /// ran under [`AHEAD_UNDER`]: both make the next claim claim ahead.
    backlog: AtomicBool,
    quick: AtomicBool,
    /// Whether an action claim found less than it asked for since the
    /// last arrival of actions: a slot that frees then waits for the next
    /// arrival instead of asking an empty queue.
    drained: Arc<AtomicBool>,
}

/// An action claimed ahead: its ticket, and when its claim had committed
/// (a heartbeat that asked after that and did not find it held means
/// another process took it over).
struct Ahead {
    ticket: Ticket,
    claimed: SystemTime,
}

impl Queue {
    /// Must be called inside a tokio runtime (it starts the writers).
    /// `leasing` is used only when the store is shared.
    pub fn new(store: Store, capacity: usize, workers: usize, leasing: Leasing) -> Self {
        let (tickets_tx, tickets_rx) = mpsc::unbounded_channel();
        let shared = store.shared_queue().map(|_| leasing);
        Self {
            acceptor: acceptor(store.clone(), shared.clone()),
            shared,
            started: SystemTime::now(),
            counted: Default::default(),
            flusher: flusher(store.clone()),
            ending: tokio_util::task::TaskTracker::new(),
            claims: Default::default(),
            ahead: Default::default(),
            backlog: AtomicBool::new(false),
            quick: AtomicBool::new(false),
            drained: watch_arrivals(&store),
            store,
            capacity,
            workers,
            entries: Mutex::new(HashMap::new()),
            tickets_tx,
            tickets_rx: tokio::sync::Mutex::new(tickets_rx),
        }
    }

    /// Whether the queue is a shared store's, claimed by any number of
    /// processes (nothing of it is this process's to restore).
    pub fn is_shared(&self) -> bool {
        self.shared.is_some()
    }

    /// Put every accepted execution that has not ended back in line, in
    /// accept order: pending ones as they were, running actions from the
    /// start (a guest's memory does not survive a process), running
    /// workflows to be resumed from their journals. Then add workflows a
    /// stopped `wasmflow run` left running. Returns how many were queued.
    pub fn restore(
        &self,
        interrupted_workflows: Vec<ExecutionRecord>,
    ) -> Result<usize, StoreError> {
        if self.is_shared() {
            return Ok(0);
        }
        let mut n = 0;
        for q in self.store.queued()? {
            let record = match self.store.get(q.id)? {
                Some(r) if !r.is_finished() => r,
                _ => {
                    self.store.dequeue(q.seq)?;
                    continue;
                }
            };
            let mut record = record;
            if record.kind == Kind::Action && record.status == Status::Running {
                record.status = Status::Pending;
                record.started_at = None;
                self.store.put_unflushed(&record)?;
            }
            let payload = serde_json::from_slice(&q.payload).unwrap_or_default();
            self.insert(q.seq, &record, payload);
            let _ = self.tickets_tx.send(Ticket::local(q.seq, q.id));
            n += 1;
        }
        for record in interrupted_workflows {
            if self
                .entries
                .lock()
                .expect("not poisoned")
                .contains_key(&record.id)
            {
                continue;
            }
            let seq = self.store.enqueue(&record, b"{}")?;
            self.insert(seq, &record, Payload::default());
            let _ = self.tickets_tx.send(Ticket::local(seq, record.id));
            n += 1;
        }
        self.store.flush()?;
        Ok(n)
    }

    fn insert(&self, seq: u64, record: &ExecutionRecord, payload: Payload) {
        self.entries.lock().expect("not poisoned").insert(
            record.id,
            QueueEntry {
                seq,
                action: record.action.clone(),
                kind: record.kind,
                accepted_at: record.created_at,
                state: EntryState::Pending,
                cancel: CancellationToken::new(),
                pause: CancellationToken::new(),
                lost: CancellationToken::new(),
                payload,
            },
        );
    }

    /// Accept a pending record: durable when this returns.
    pub async fn accept(
        &self,
        record: &ExecutionRecord,
        payload: Payload,
    ) -> Result<(), AcceptError> {
        if self.shared.is_some() {
            return self.accept_shared(record, payload).await;
        }
        {
            let mut entries = self.entries.lock().expect("not poisoned");
            if entries.len() >= self.capacity {
                return Err(AcceptError::Full(entries.len()));
            }
            // Reserved before writing, so concurrent accepts cannot overfill.
            entries.insert(
                record.id,
                QueueEntry {
                    seq: 0,
                    action: record.action.clone(),
                    kind: record.kind,
                    accepted_at: record.created_at,
                    state: EntryState::Pending,
                    cancel: CancellationToken::new(),
                    pause: CancellationToken::new(),
                    lost: CancellationToken::new(),
                    payload: payload.clone(),
                },
            );
        }
        let bytes = serde_json::to_vec(&payload).expect("payloads serialize");
        let seq = match self.write_accepted(record, bytes, None).await {
            Ok(seq) => seq,
            Err(e) => {
                self.entries
                    .lock()
                    .expect("not poisoned")
                    .remove(&record.id);
                return Err(e);
            }
        };
        if let Some(entry) = self
            .entries
            .lock()
            .expect("not poisoned")
            .get_mut(&record.id)
        {
            entry.seq = seq;
        }
        let _ = self.tickets_tx.send(Ticket::local(seq, record.id));
        Ok(())
    }

    /// On a shared store: the entry is written for any worker to claim,
    /// the capacity counted over every process's entries.
    async fn accept_shared(
        &self,
        record: &ExecutionRecord,
        payload: Payload,
    ) -> Result<(), AcceptError> {
        // Counting every entry on every accept would make accepting
        // slower the longer the queue: the count is at most COUNT_EVERY
        // old, plus what this process accepted since.
        let stale = self
            .counted
            .lock()
            .expect("not poisoned")
            .0
            .is_none_or(|at| at.elapsed() > COUNT_EVERY);
        if stale {
            let store = self.store.clone();
            let held = tokio::task::spawn_blocking(move || store.queue_len())
                .await
                .map_err(|e| AcceptError::Store(StoreError::Other(e.to_string())))??;
            *self.counted.lock().expect("not poisoned") = (Some(std::time::Instant::now()), held);
        }
        {
            let mut counted = self.counted.lock().expect("not poisoned");
            if counted.1 >= self.capacity {
                return Err(AcceptError::Full(counted.1));
            }
            // Counted before it is written: concurrent accepts cannot
            // overfill (and one that fails is counted until the next count).
            counted.1 += 1;
        }
        let bytes = serde_json::to_vec(&payload).expect("payloads serialize");
        // An idle action slot of this process runs it: the entry is
        // written held for that slot, and no claim is needed. A slot is
        // idle only when its last claim found nothing, so nothing older
        // waits here for it.
        let idle = match record.kind == Kind::Action {
            true => self.claims[0].lock().expect("not poisoned").pop(),
            false => None,
        };
        let slot = idle.as_ref().map(|(slot, _)| *slot as u32);
        let seq = match self.write_accepted(record, bytes, slot).await {
            Ok(seq) => seq,
            Err(e) => {
                // The slot waits on (it claims at its next wake-up).
                self.claims[0].lock().expect("not poisoned").extend(idle);
                return Err(e);
            }
        };
        if let Some((_, served)) = idle {
            self.insert(seq, record, payload);
            let ticket = Ticket {
                seq,
                id: record.id,
                lost: 0,
                lost_by: None,
                record: Some(Box::new(record.clone())),
            };
            if let Err(ticket) = served.send(ticket) {
                // The slot stopped meanwhile: the next one to free takes
                // it (or this process's leaving lets it go).
                self.ahead.lock().expect("not poisoned").push_back(Ahead {
                    ticket,
                    claimed: SystemTime::now(),
                });
            }
        }
        Ok(())
    }

    /// The entry and the pending record, durable when this returns (one
    /// write for every accept waiting at the same time); on a shared
    /// store held from the start for `slot` of this process.
    async fn write_accepted(
        &self,
        record: &ExecutionRecord,
        payload: Vec<u8>,
        slot: Option<u32>,
    ) -> Result<u64, AcceptError> {
        self.acceptor
            .ask((record.clone(), payload, slot))
            .await
            .map_err(|message| AcceptError::Store(StoreError::Other(message)))
    }

    /// Run `task`, which writes an end ([`Queue::finished`]), where
    /// [`Queue::settle`] waits for it.
    pub fn ending(&self, task: impl std::future::Future<Output = ()> + Send + 'static) {
        self.ending.spawn(task);
    }

    /// Wait for every end being written: at shutdown, before what is
    /// still running is put back for the next start (an action that ended
    /// but is not written yet would look interrupted).
    pub async fn settle(&self) {
        self.ending.close();
        self.ending.wait().await;
    }

    /// `ticket`'s execution ended: write its end (`ended`, unless its
    /// record is written already), wait until it is on disk, then drop its
    /// entry, in one write with every flush waiting at the same time; and
    /// out of the view.
    pub async fn finished(&self, ticket: &Ticket, ended: Option<Ended>) -> Result<(), AcceptError> {
        if let Some(Ended { record, .. }) = &ended {
            if let (Some(started), Some(ended)) = (record.started_at, record.ended_at) {
                let ran = ended.duration_since(started).unwrap_or(Duration::ZERO);
                self.quick.store(ran < AHEAD_UNDER, Ordering::Relaxed);
            }
        }
        let flush = Flush {
            seq: ticket.seq,
            ended,
        };
        self.flusher
            .ask(flush)
            .await
            .map_err(|message| AcceptError::Store(StoreError::Other(message)))?;
        self.left_shared_queue();
        self.let_go(ticket);
        Ok(())
    }

    /// The next ticket, in accept order, for this process's `slot`: on a
    /// shared store, of `kind` (see [`wasmflow_store::SharedQueue::claim`]);
    /// an embedded store's slots take either.
    pub async fn next(&self, slot: usize, kind: Kind) -> Option<Ticket> {
        match &self.shared {
            None => self.tickets_rx.lock().await.recv().await,
            Some(leasing) => Some(self.claim(leasing, slot, kind).await),
        }
    }

    /// Claim the oldest entry of `kind` nobody holds for `slot`, waiting
    /// while there is none. A slot claims for itself and for every other
    /// slot waiting at that moment (one statement for all); claims of
    /// slots that start waiting meanwhile run beside it.
    ///
    /// With a backlog of short actions, a claim also takes entries ahead,
    /// up to one per slot of this process, held (and renewed) for the
    /// slots that free next: one statement then starts several actions
    /// instead of one. Long actions are not claimed ahead, so an entry
    /// never waits here behind one while another process has a free slot.
    async fn claim(&self, leasing: &Leasing, slot: usize, kind: Kind) -> Ticket {
        let arrivals = self
            .store
            .shared_queue()
            .expect("a shared store")
            .arrivals(kind);
        let claims = &self.claims[usize::from(kind == Kind::Workflow)];
        let (served, mut ticket) = oneshot::channel();
        {
            let mut waiting = claims.lock().expect("not poisoned");
            if kind == Kind::Action {
                if let Some(ahead) = self.ahead.lock().expect("not poisoned").pop_front() {
                    return ahead.ticket;
                }
            }
            waiting.push((slot, served));
        }
        // A queue this process found empty since the last arrival is not
        // asked again: the slot waits for an arrival (or an accept here
        // hands it its entry), or polls for leases that ran out.
        let mut ask = !(kind == Kind::Action && self.drained.load(Ordering::Relaxed));
        loop {
            // Listening before asking, so an entry added while the claim
            // runs wakes this slot.
            let arrived = arrivals.notified();
            tokio::pin!(arrived);
            arrived.as_mut().enable();
            if let Ok(t) = ticket.try_recv() {
                return t;
            }
            // Unless another slot took this one's request (and serves it
            // or puts it back), claim for every slot waiting.
            let taken = {
                let mut waiting = claims.lock().expect("not poisoned");
                match ask && waiting.iter().any(|(s, _)| *s == slot) {
                    true => Some(std::mem::take(&mut *waiting)),
                    false => None,
                }
            };
            ask = true;
            if let Some(taken) = taken {
                let more = self.claim_for(taken, claims, leasing, kind).await;
                if let Ok(t) = ticket.try_recv() {
                    return t;
                }
                if more {
                    // Every slot asked for got an entry: more may wait.
                    continue;
                }
            }
            tokio::select! {
                t = &mut ticket => if let Ok(t) = t { return t },
                _ = tokio::time::sleep(IDLE_POLL) => {}
                _ = &mut arrived => {}
            }
        }
    }

    /// One claim for the `waiting` slots: each entry won goes to its
    /// slot; slots left without one wait on (back in `claims`). Whether
    /// every slot asked for got an entry.
    async fn claim_for(
        &self,
        waiting: Vec<(usize, oneshot::Sender<Ticket>)>,
        claims: &Waiting,
        leasing: &Leasing,
        kind: Kind,
    ) -> bool {
        let waiting: Vec<_> = waiting
            .into_iter()
            // A slot that stopped waiting (shutdown) gets nothing.
            .filter(|(_, served)| !served.is_closed())
            .collect();
        let slots: Vec<u32> = waiting.iter().map(|(slot, _)| *slot as u32).collect();
        let ahead = match kind == Kind::Action
            && self.backlog.load(Ordering::Relaxed)
            && self.quick.load(Ordering::Relaxed)
        {
            true => {
                let held = self.ahead.lock().expect("not poisoned").len();
                self.workers.saturating_sub(held)
            }
            false => 0,
        };
        let queue = self.store.shared_queue().expect("a shared store");
        let claimed = match queue
            .claim(&leasing.name, &slots, ahead, leasing.lease, kind)
            .await
        {
            Ok(claimed) => claimed,
            Err(e) => {
                tracing::warn!("claiming work: {e}");
                Vec::new()
            }
        };
        // After the claim committed: a heartbeat that asks later and does
        // not find these held means another process took them.
        let claimed_at = SystemTime::now();
        let all = !slots.is_empty() && claimed.len() == slots.len() + ahead;
        if kind == Kind::Action {
            self.backlog.store(all, Ordering::Relaxed);
            self.drained.store(!all, Ordering::Relaxed);
        }
        let mut waiting: HashMap<usize, oneshot::Sender<Ticket>> = waiting.into_iter().collect();
        let mut claimed_ahead = Vec::new();
        for c in claimed {
            let payload = serde_json::from_slice(&c.entry.payload).unwrap_or_default();
            let Some(record) = &c.record else {
                // Its record is gone (purged): nothing to run.
                let _ = self.store.dequeue(c.entry.seq);
                continue;
            };
            self.insert(c.entry.seq, record, payload);
            let ticket = Ticket {
                seq: c.entry.seq,
                id: c.entry.id,
                lost: c.lost,
                lost_by: c.lost_by,
                record: c.record,
            };
            let Some(slot) = c.slot else {
                claimed_ahead.push(Ahead {
                    ticket,
                    claimed: claimed_at,
                });
                continue;
            };
            let Some(served) = waiting.remove(&(slot as usize)) else {
                continue;
            };
            if let Err(ticket) = served.send(ticket) {
                // Its slot stopped meanwhile (shutdown): the entry is left
                // for the next claim once this process leaves.
                self.let_go(&ticket);
            }
        }
        let mut claims = claims.lock().expect("not poisoned");
        claims.extend(waiting);
        let mut held = self.ahead.lock().expect("not poisoned");
        held.extend(claimed_ahead);
        // Slots that started waiting while this claim ran take what it
        // claimed ahead, now rather than at their next poll.
        while !held.is_empty() && !claims.is_empty() {
            let (_, served) = claims.remove(0);
            let ahead = held.pop_front().expect("not empty");
            if let Err(ticket) = served.send(ahead.ticket) {
                held.push_front(Ahead {
                    ticket,
                    claimed: ahead.claimed,
                });
            }
        }
        all
    }

    /// What the heartbeat found of the entries claimed ahead (`asked` is
    /// when it asked): one canceled from another process is canceled here
    /// (it ends as soon as a slot takes it); one no longer held was taken
    /// over by another process while this one stalled, and is dropped.
    pub fn check_ahead(&self, held: &HashSet<u64>, canceled: &HashSet<u64>, asked: SystemTime) {
        let lost: Vec<Ticket> = {
            let mut ahead = self.ahead.lock().expect("not poisoned");
            let entries = self.entries.lock().expect("not poisoned");
            for a in ahead.iter() {
                if canceled.contains(&a.ticket.seq) {
                    if let Some(entry) = entries.get(&a.ticket.id) {
                        entry.cancel.cancel();
                    }
                }
            }
            let (lost, kept) = std::mem::take(&mut *ahead)
                .into_iter()
                .partition(|a| a.claimed < asked && !held.contains(&a.ticket.seq));
            *ahead = kept;
            lost.into_iter().map(|a: Ahead| a.ticket).collect()
        };
        for ticket in lost {
            tracing::warn!(
                "execution {}: claimed ahead by this worker, whose lease ran out; another took it over",
                ticket.id
            );
            self.let_go(&ticket);
        }
    }

    /// Cancel `id` wherever it waits or runs, on a shared store.
    pub fn cancel_shared(&self, id: ExecutionId) -> Result<wasmflow_store::Cancel, StoreError> {
        let Some(queue) = self.store.shared_queue() else {
            return Ok(wasmflow_store::Cancel::NotQueued);
        };
        let outcome = queue.cancel(id)?;
        if outcome == wasmflow_store::Cancel::Withdrawn {
            self.left_shared_queue();
        }
        Ok(outcome)
    }

    /// An entry this process took out of the shared queue: one fewer in
    /// the count accepts check (others' go with the next count).
    fn left_shared_queue(&self) {
        if self.shared.is_some() {
            let mut counted = self.counted.lock().expect("not poisoned");
            counted.1 = counted.1.saturating_sub(1);
        }
    }

    /// Pause workflow `id` wherever it runs on a shared store: the worker
    /// holding it hears at its next heartbeat. The holder, or None when
    /// nothing holds it (or the store is not shared).
    pub fn pause_shared(&self, id: ExecutionId) -> Result<Option<String>, StoreError> {
        match self.store.shared_queue() {
            Some(queue) => queue.pause(id),
            None => Ok(None),
        }
    }

    /// On a shared store, this process's name and settings there.
    pub fn leasing(&self) -> Option<&Leasing> {
        self.shared.as_ref()
    }

    /// What this process runs.
    pub fn running(&self) -> Vec<Running> {
        self.entries
            .lock()
            .expect("not poisoned")
            .iter()
            .filter_map(|(id, e)| match e.state {
                EntryState::Running { since, .. } => Some(Running {
                    id: *id,
                    seq: e.seq,
                    since,
                    cancel: e.cancel.clone(),
                    pause: e.pause.clone(),
                    lost: e.lost.clone(),
                }),
                EntryState::Pending => None,
            })
            .collect()
    }

    /// Mark `id` running on `worker`; its entry (None if it was canceled
    /// while it waited).
    pub fn start(&self, id: ExecutionId, worker: usize) -> Option<QueueEntry> {
        let mut entries = self.entries.lock().expect("not poisoned");
        let entry = entries.get_mut(&id)?;
        entry.state = EntryState::Running {
            worker,
            since: SystemTime::now(),
        };
        Some(entry.clone())
    }

    /// The execution ended: out of the view and out of the queue. Only
    /// this ticket's entry: a workflow that paused may be resumed (queued
    /// again under its id) before its worker gets here.
    pub fn done(&self, ticket: &Ticket) {
        self.left_shared_queue();
        self.let_go(ticket);
        if let Err(e) = self.store.dequeue(ticket.seq) {
            // The entry stays; the next start sees its final record and
            // drops it then.
            tracing::warn!("dropping queue entry {}: {e}", ticket.seq);
        }
    }

    /// This ticket's entry out of this process's view (the store's entry
    /// left as it is: another worker holds it now, or `done` drops it).
    pub fn let_go(&self, ticket: &Ticket) {
        let mut entries = self.entries.lock().expect("not poisoned");
        if entries.get(&ticket.id).is_some_and(|e| e.seq == ticket.seq) {
            entries.remove(&ticket.id);
        }
    }

    pub fn entry(&self, id: ExecutionId) -> Option<QueueEntry> {
        self.entries.lock().expect("not poisoned").get(&id).cloned()
    }

    /// Take a pending execution out of line (it was canceled).
    pub fn withdraw(&self, id: ExecutionId) -> Option<QueueEntry> {
        let mut entries = self.entries.lock().expect("not poisoned");
        if matches!(entries.get(&id)?.state, EntryState::Pending) {
            let entry = entries.remove(&id)?;
            let _ = self.store.dequeue(entry.seq);
            return Some(entry);
        }
        None
    }

    /// Pending and running counts.
    pub fn depth(&self) -> (usize, usize) {
        let entries = self.entries.lock().expect("not poisoned");
        let running = entries
            .values()
            .filter(|s| matches!(s.state, EntryState::Running { .. }))
            .count();
        (entries.len() - running, running)
    }

    /// Every entry still held (for shutdown).
    pub fn entries(&self) -> Vec<(ExecutionId, QueueEntry)> {
        self.entries
            .lock()
            .expect("not poisoned")
            .iter()
            .map(|(id, s)| (*id, s.clone()))
            .collect()
    }

    pub fn view(&self) -> Result<QueueView, StoreError> {
        if self.shared.is_some() {
            return self.shared_view();
        }
        Ok(self.local_view())
    }

    /// The worker processes: on a shared store every one that sent a
    /// heartbeat and did not leave; on an embedded store this one.
    pub fn workers_view(&self) -> Result<Vec<WorkerView>, StoreError> {
        let rfc3339 = |t| humantime::format_rfc3339_seconds(t).to_string();
        let Some(leasing) = &self.shared else {
            let mut running = self.running();
            running.sort_by_key(|r| r.seq);
            return Ok(vec![WorkerView {
                name: "this server".into(),
                started_at: rfc3339(self.started),
                heartbeat_ms: 0,
                alive: true,
                concurrency: self.workers as u32,
                running: running.iter().map(|r| r.id.to_string()).collect(),
            }]);
        };
        let queue = self.store.shared_queue().expect("a shared store");
        Ok(queue
            .workers()?
            .into_iter()
            .map(|w| WorkerView::of(w, leasing.lease))
            .collect())
    }

    /// Every process's entries, as the store holds them.
    fn shared_view(&self) -> Result<QueueView, StoreError> {
        let queue = self.store.shared_queue().expect("a shared store");
        let now = SystemTime::now();
        let ms = |since: SystemTime| {
            now.duration_since(since)
                .unwrap_or(Duration::ZERO)
                .as_millis() as u64
        };
        let (mut pending, mut running) = (Vec::new(), Vec::new());
        for entry in queue.entries()? {
            let Some(record) = entry.record else {
                continue;
            };
            let mut item = QueueItem {
                id: entry.id.to_string(),
                action: record.action,
                waited_ms: ms(record.created_at),
                worker: None,
                process: None,
                running_ms: None,
                parent: record.parent.map(|p| p.to_string()),
                task: record.task,
            };
            match entry.lease {
                Some(lease) if !lease.expired => {
                    item.worker = lease.slot.map(|s| s as usize);
                    item.running_ms = Some(ms(lease.since));
                    item.process = Some(lease.worker);
                    running.push(item);
                }
                _ => pending.push(item),
            }
        }
        Ok(QueueView {
            capacity: self.capacity,
            workers: self.workers,
            pending,
            running,
        })
    }

    fn local_view(&self) -> QueueView {
        let now = SystemTime::now();
        let ms = |since: SystemTime| {
            now.duration_since(since)
                .unwrap_or(Duration::ZERO)
                .as_millis() as u64
        };
        let entries = self.entries.lock().expect("not poisoned");
        let mut ordered: Vec<_> = entries.iter().collect();
        ordered.sort_by_key(|(_, s)| s.seq);
        let mut pending = Vec::new();
        let mut running = Vec::new();
        for (id, s) in ordered {
            let mut item = QueueItem {
                id: id.to_string(),
                action: s.action.clone(),
                waited_ms: ms(s.accepted_at),
                worker: None,
                process: None,
                running_ms: None,
                // Only top-level executions queue here: tasks run in their
                // workflow's process.
                parent: None,
                task: None,
            };
            match s.state {
                EntryState::Pending => pending.push(item),
                EntryState::Running { worker, since } => {
                    item.worker = Some(worker);
                    item.running_ms = Some(ms(since));
                    running.push(item);
                }
            }
        }
        running.sort_by_key(|i| i.worker);
        QueueView {
            capacity: self.capacity,
            workers: self.workers,
            pending,
            running,
        }
    }
}

/// Most items one write of the store carries.
const BATCH: usize = 256;

/// An ended execution's flush: its end to write first (unless its record
/// is written already), and its entry to drop after.
struct Flush {
    seq: u64,
    ended: Option<Ended>,
}

fn flusher(store: Store) -> Batcher<Flush, ()> {
    Batcher::start(BATCH, move |asked: Vec<Flush>| {
        let seqs: Vec<u64> = asked.iter().map(|f| f.seq).collect();
        let ended: Vec<_> = asked
            .iter()
            .filter_map(|f| f.ended.as_ref())
            .map(|e| (&e.record, e.events.as_slice()))
            .collect();
        // Writing ends is idempotent, and one that fails for good leaves
        // its entries held by this live process (renewed by its heartbeat,
        // never taken over), so a failure that may pass (PostgreSQL's
        // deadlock detection picks a victim; a connection drops) is tried
        // again before anybody is told.
        let mut waits = FLUSH_RETRIES.iter();
        loop {
            match store.flush_ended(&ended, &seqs) {
                Ok(()) => return Ok(vec![(); asked.len()]),
                Err(e) => match waits.next() {
                    Some(wait) => {
                        tracing::warn!("writing {} ends: {e}; trying again", seqs.len());
                        std::thread::sleep(*wait);
                    }
                    None => return Err(e.to_string()),
                },
            }
        }
    })
}

/// The waits before each new try of a failed write of ends.
const FLUSH_RETRIES: [Duration; 3] = [
    Duration::from_millis(10),
    Duration::from_millis(100),
    Duration::from_millis(1000),
];

/// A flag that every arrival of actions in a shared queue clears (see
/// [`Queue::claim`]); never set on an embedded store.
fn watch_arrivals(store: &Store) -> Arc<AtomicBool> {
    let drained = Arc::new(AtomicBool::new(false));
    if let Some(queue) = store.shared_queue() {
        let (arrivals, cleared) = (queue.arrivals(Kind::Action), drained.clone());
        tokio::spawn(async move {
            loop {
                let arrived = arrivals.notified();
                tokio::pin!(arrived);
                arrived.as_mut().enable();
                // After listening: an arrival before this is covered by
                // the clearing, one after it by the wait.
                cleared.store(false, Ordering::Relaxed);
                arrived.await;
            }
        });
    }
    drained
}

/// An accept's entry, its pending record, and on a shared store the slot
/// of this process that holds it from the start (see [`Queue::accept`]).
type Accepted = (ExecutionRecord, Vec<u8>, Option<u32>);

/// Accepts: entries and pending records, durable when answered.
fn acceptor(store: Store, shared: Option<Leasing>) -> Batcher<Accepted, u64> {
    Batcher::start(BATCH, move |asked: Vec<Accepted>| {
        let entries: Vec<(&ExecutionRecord, &[u8])> =
            asked.iter().map(|(r, p, _)| (r, p.as_slice())).collect();
        match (&shared, store.shared_queue()) {
            (Some(leasing), Some(queue)) => {
                let slots: Vec<Option<u32>> = asked.iter().map(|(_, _, slot)| *slot).collect();
                queue.accept_holding(&entries, &slots, &leasing.name, leasing.lease)
            }
            _ => store.accept(&entries),
        }
        .map_err(|e| e.to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use wasmflow_store::Location;
    use wasmflow_testkit::PgCluster;

    fn shared_queue(url: &str, name: &str, workers: usize) -> Arc<Queue> {
        let store = Store::open_at(&Location::Postgres(url.to_owned())).unwrap();
        let leasing = Leasing {
            name: name.into(),
            ..Leasing::default()
        };
        Arc::new(Queue::new(store, 1000, workers, leasing))
    }

    fn action(n: u64) -> ExecutionRecord {
        ExecutionRecord::new_action(format!("a{n}"), "sha256:00".into(), serde_json::json!(n))
    }

    type Holder = Option<(String, Option<u32>)>;

    fn entries(queue: &Queue) -> Vec<wasmflow_store::Entry> {
        queue.store.shared_queue().unwrap().entries().unwrap()
    }

    /// Who holds each of the store's entries, in queue order.
    fn holders(queue: &Queue) -> Vec<(ExecutionId, Holder)> {
        entries(queue)
            .into_iter()
            .map(|e| (e.id, e.lease.map(|l| (l.worker, l.slot))))
            .collect()
    }

    /// `slot`'s next ticket, on a task of its own.
    fn next(queue: &Arc<Queue>, slot: usize) -> tokio::task::JoinHandle<Ticket> {
        let queue = queue.clone();
        tokio::spawn(async move {
            let next = queue.next(slot, Kind::Action);
            tokio::time::timeout(Duration::from_secs(10), next)
                .await
                .expect("a ticket within 10 s")
                .expect("a ticket")
        })
    }

    /// Until `slot` of `queue` waits idle (it asked the queue and found
    /// nothing for it).
    async fn idle(queue: &Queue, slot: usize) {
        while !queue.claims[0]
            .lock()
            .unwrap()
            .iter()
            .any(|(s, _)| *s == slot)
        {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// An accept with an idle slot of its own process gives that slot the
    /// entry, held from the start: another process's idle slot, woken by
    /// arrivals, never gets it.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_idle_slot_runs_what_its_process_accepts() {
        let url = PgCluster::shared().database();
        let (here, there) = (
            shared_queue(&url, "here", 1),
            shared_queue(&url, "there", 1),
        );
        let rival = next(&there, 0);
        idle(&there, 0).await;
        for n in 0..10 {
            let record = action(n);
            let waiting = next(&here, 0);
            idle(&here, 0).await;
            here.accept(&record, Payload::default()).await.unwrap();
            let ticket = waiting.await.unwrap();
            assert_eq!(ticket.id, record.id, "accept {n}");
            let held = holders(&here);
            let mine = (record.id, Some(("here".to_owned(), Some(0))));
            assert!(held.contains(&mine), "{held:?}");
            here.done(&ticket);
        }
        assert!(!rival.is_finished(), "the other process's slot got one");
        rival.abort();
    }

    /// With a backlog of quick actions, one claim takes an entry for the
    /// slot that asked and one more for each slot of the process; the
    /// next slots take those without a claim. One the heartbeat no longer
    /// finds held is dropped; one canceled elsewhere is canceled here.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_backlog_of_quick_actions_is_claimed_ahead() {
        let url = PgCluster::shared().database();
        let queue = shared_queue(&url, "ahead", 2);
        let records: Vec<_> = (0..8).map(action).collect();
        for r in &records {
            queue.store.enqueue(r, b"{}").unwrap();
        }
        queue.store.flush().unwrap();
        // What a backlog of quick ends leaves behind.
        queue.backlog.store(true, Ordering::Relaxed);
        queue.quick.store(true, Ordering::Relaxed);

        let first = next(&queue, 0).await.unwrap();
        assert_eq!(first.id, records[0].id);
        let held = holders(&queue);
        let of = |held: &[(ExecutionId, Holder)], n: usize| held[n].1.clone();
        assert_eq!(of(&held, 0), Some(("ahead".into(), Some(0))), "{held:?}");
        assert_eq!(of(&held, 1), Some(("ahead".into(), None)), "{held:?}");
        assert_eq!(of(&held, 2), Some(("ahead".into(), None)), "{held:?}");
        assert_eq!(of(&held, 3), None, "two ahead, not more: {held:?}");

        // The next slot takes one claimed ahead: nothing more is claimed.
        let second = next(&queue, 1).await.unwrap();
        assert_eq!(second.id, records[1].id);
        assert_eq!(holders(&queue), held);

        // A heartbeat that finds the third canceled from elsewhere.
        let third_seq = held_seq(&queue, records[2].id);
        queue.check_ahead(
            &HashSet::from([third_seq]),
            &HashSet::from([third_seq]),
            SystemTime::now(),
        );
        let entry = queue.entry(records[2].id).expect("still held here");
        assert!(entry.cancel.is_cancelled(), "canceled where it waits");
        // Then a heartbeat that no longer finds it held: another process
        // took it over; it leaves this process's view and its slots.
        queue.check_ahead(&HashSet::new(), &HashSet::new(), SystemTime::now());
        assert!(queue.entry(records[2].id).is_none());
        assert!(queue.ahead.lock().unwrap().is_empty());
    }

    fn held_seq(queue: &Queue, id: ExecutionId) -> u64 {
        let entry = entries(queue).into_iter().find(|e| e.id == id);
        entry.expect("queued").seq
    }
}
