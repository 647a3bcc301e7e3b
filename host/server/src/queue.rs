//! The bounded, durable queue of accepted executions.
//!
//! Accepting writes the pending record and its queue entry in one sled
//! transaction and waits for them to be on disk (flushes are shared by
//! every accept waiting at the same time: one fsync for a burst) before
//! the client hears 202. An entry leaves the queue only after its record
//! is final, so a restart finds every accepted execution that has not
//! ended and runs it again under the same id. Workers take entries in
//! accept order. This module keeps the in-memory view (who waits, who runs
//! where) that `GET /api/v1/queue` shows; running them is `worker`'s.

use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use utoipa::ToSchema;
use wasmflow_store::{ExecutionId, ExecutionRecord, Kind, Status, Store, StoreError};

/// What a queue entry carries besides its record.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Payload {
    /// `re-run` with `from`: the task to start again from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
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
#[derive(Clone, Copy, Debug)]
pub struct Ticket {
    pub seq: u64,
    pub id: ExecutionId,
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
    pub payload: Payload,
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
    /// The worker running it (running ones only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub worker: Option<usize>,
    /// Milliseconds since it started (running ones only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub running_ms: Option<u64>,
}

pub struct Queue {
    store: Store,
    capacity: usize,
    workers: usize,
    entries: Mutex<HashMap<ExecutionId, QueueEntry>>,
    tickets_tx: mpsc::UnboundedSender<Ticket>,
    tickets_rx: tokio::sync::Mutex<mpsc::UnboundedReceiver<Ticket>>,
    flusher: mpsc::UnboundedSender<oneshot::Sender<Result<(), String>>>,
}

impl Queue {
    /// Must be called inside a tokio runtime (it starts the flusher).
    pub fn new(store: Store, capacity: usize, workers: usize) -> Self {
        let (tickets_tx, tickets_rx) = mpsc::unbounded_channel();
        Self {
            flusher: start_flusher(store.clone()),
            store,
            capacity,
            workers,
            entries: Mutex::new(HashMap::new()),
            tickets_tx,
            tickets_rx: tokio::sync::Mutex::new(tickets_rx),
        }
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
            let _ = self.tickets_tx.send(Ticket {
                seq: q.seq,
                id: q.id,
            });
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
            let _ = self.tickets_tx.send(Ticket { seq, id: record.id });
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
                    payload: payload.clone(),
                },
            );
        }
        let bytes = serde_json::to_vec(&payload).expect("payloads serialize");
        let written = self
            .store
            .enqueue(record, &bytes)
            .map_err(AcceptError::from);
        let written = match written {
            Ok(seq) => self.flush().await.map(|()| seq),
            Err(e) => Err(e),
        };
        let seq = match written {
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
        let _ = self.tickets_tx.send(Ticket { seq, id: record.id });
        Ok(())
    }

    /// Wait until everything written so far is on disk (one fsync for
    /// every caller waiting at the same time).
    pub async fn flush(&self) -> Result<(), AcceptError> {
        let (tx, rx) = oneshot::channel();
        let _ = self.flusher.send(tx);
        match rx.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(message)) => Err(AcceptError::Store(StoreError::Other(message))),
            Err(_) => Err(AcceptError::Store(StoreError::Other(
                "the store's flusher stopped".into(),
            ))),
        }
    }

    /// The next ticket, in accept order.
    pub async fn next(&self) -> Option<Ticket> {
        self.tickets_rx.lock().await.recv().await
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

    /// The execution ended: out of the view and out of the queue.
    pub fn done(&self, ticket: Ticket) {
        self.entries
            .lock()
            .expect("not poisoned")
            .remove(&ticket.id);
        if let Err(e) = self.store.dequeue(ticket.seq) {
            // The entry stays; the next start sees its final record and
            // drops it then.
            tracing::warn!("dropping queue entry {}: {e}", ticket.seq);
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

    pub fn view(&self) -> QueueView {
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
                running_ms: None,
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

/// Group commit: whoever asks while a flush runs shares the next one.
fn start_flusher(store: Store) -> mpsc::UnboundedSender<oneshot::Sender<Result<(), String>>> {
    let (tx, mut rx) = mpsc::unbounded_channel::<oneshot::Sender<Result<(), String>>>();
    tokio::spawn(async move {
        while let Some(first) = rx.recv().await {
            let mut waiting = vec![first];
            while let Ok(more) = rx.try_recv() {
                waiting.push(more);
            }
            let s = store.clone();
            let result = tokio::task::spawn_blocking(move || s.flush())
                .await
                .map_err(|e| e.to_string())
                .and_then(|r| r.map_err(|e| e.to_string()));
            for w in waiting {
                let _ = w.send(result.clone());
            }
        }
    });
    tx
}
