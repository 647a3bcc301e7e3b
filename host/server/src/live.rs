//! What a queued or running execution says while it runs: its log lines
//! and, for workflows, its tasks starting and ending. Followers (the SSE
//! log endpoint) get everything said so far and then each new event, up to
//! `end`. Records only get the log lines when the execution ends, so this
//! is the one place a running execution's lines can be read.

use serde::Serialize;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::broadcast;
use wasmflow_store::{ExecutionId, LogLine, Status};

#[derive(Clone, Debug, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum LiveEvent {
    Log(LogLine),
    TaskStarted {
        task: String,
        item: Option<usize>,
    },
    TaskFinished {
        task: String,
        status: Status,
        elapsed_ms: u64,
    },
    End {
        status: Status,
    },
}

impl LiveEvent {
    /// The SSE event name.
    pub fn name(&self) -> &'static str {
        match self {
            LiveEvent::Log(_) => "log",
            LiveEvent::TaskStarted { .. } | LiveEvent::TaskFinished { .. } => "task",
            LiveEvent::End { .. } => "end",
        }
    }
}

/// One execution's events. The broadcast channel (a fixed ring of
/// [`FOLLOWER_BACKLOG`] slots) is made when the first follower comes: most
/// executions are never followed, and a queue of thousands of them would
/// otherwise hold a ring each.
#[derive(Default)]
struct Channel {
    /// Everything said so far, and the channel once someone follows.
    state: Mutex<(Vec<LiveEvent>, Option<broadcast::Sender<LiveEvent>>)>,
}

/// Events a follower may fall behind by before it misses lines (never the
/// end: see the SSE handler).
const FOLLOWER_BACKLOG: usize = 1024;

#[derive(Default)]
pub struct Live {
    channels: Mutex<HashMap<ExecutionId, Arc<Channel>>>,
}

/// Everything said so far, and a receiver for what comes next.
pub type Following = (Vec<LiveEvent>, broadcast::Receiver<LiveEvent>);

impl Live {
    /// Start listening for `id` (at accept, so nothing is missed).
    pub fn open(&self, id: ExecutionId) {
        self.channels
            .lock()
            .expect("not poisoned")
            .entry(id)
            .or_default();
    }

    pub fn say(&self, id: ExecutionId, event: LiveEvent) {
        let channel = self
            .channels
            .lock()
            .expect("not poisoned")
            .get(&id)
            .cloned();
        if let Some(c) = channel {
            // Under the backlog's lock, so a follower that subscribes in
            // between sees each event exactly once.
            let mut state = c.state.lock().expect("not poisoned");
            if let Some(tx) = &state.1 {
                let _ = tx.send(event.clone());
            }
            state.0.push(event);
        }
    }

    /// Say `end` and forget the execution.
    pub fn end(&self, id: ExecutionId, status: Status) {
        self.say(id, LiveEvent::End { status });
        self.channels.lock().expect("not poisoned").remove(&id);
    }

    /// Forget `id` without a word (it was never accepted).
    pub fn forget(&self, id: ExecutionId) {
        self.channels.lock().expect("not poisoned").remove(&id);
    }

    /// Follow `id`, if it has not ended.
    pub fn follow(&self, id: ExecutionId) -> Option<Following> {
        let channel = self
            .channels
            .lock()
            .expect("not poisoned")
            .get(&id)
            .cloned()?;
        let mut state = channel.state.lock().expect("not poisoned");
        let rx = match &state.1 {
            Some(tx) => tx.subscribe(),
            None => {
                let (tx, rx) = broadcast::channel(FOLLOWER_BACKLOG);
                state.1 = Some(tx);
                rx
            }
        };
        Some((state.0.clone(), rx))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_follower_gets_the_backlog_then_new_events_then_end() {
        let live = Live::default();
        let id = ExecutionId::new();
        live.open(id);
        live.say(
            id,
            LiveEvent::TaskStarted {
                task: "a".into(),
                item: None,
            },
        );
        let (backlog, mut rx) = live.follow(id).unwrap();
        assert_eq!(backlog.len(), 1);
        live.end(id, Status::Succeeded);
        assert!(matches!(rx.recv().await.unwrap(), LiveEvent::End { .. }));
        assert!(live.follow(id).is_none(), "ended executions are forgotten");
    }
}
