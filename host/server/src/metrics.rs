//! Prometheus metrics: executions ended by status, queue depth, and how
//! long actions ran and waited.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use std::time::Duration;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusLabel {
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ActionLabel {
    action: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabel {
    state: String,
}

fn duration_histogram() -> Histogram {
    // 0.5 ms .. ~8 min.
    Histogram::new(exponential_buckets(0.0005, 2.0, 20))
}

pub struct Metrics {
    registry: Registry,
    ended: Family<StatusLabel, Counter>,
    accepted: Counter,
    rejected_full: Counter,
    queue: Family<StateLabel, Gauge>,
    duration: Family<ActionLabel, Histogram, fn() -> Histogram>,
    wait: Histogram,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("wasmflow");
        let ended = Family::<StatusLabel, Counter>::default();
        let accepted = Counter::default();
        let rejected_full = Counter::default();
        let queue = Family::<StateLabel, Gauge>::default();
        let duration: Family<ActionLabel, Histogram, fn() -> Histogram> =
            Family::new_with_constructor(duration_histogram);
        let wait = Histogram::new(exponential_buckets(0.0001, 2.0, 20));
        registry.register(
            "executions_ended",
            "Executions this server ran to an end, by final status",
            ended.clone(),
        );
        registry.register(
            "executions_accepted",
            "Executions accepted into the queue",
            accepted.clone(),
        );
        registry.register(
            "executions_rejected_queue_full",
            "Executions refused with 429 because the queue was full",
            rejected_full.clone(),
        );
        registry.register(
            "queue_depth",
            "Executions in the queue, pending or running",
            queue.clone(),
        );
        registry.register(
            "execution_duration_seconds",
            "Wall time from start to end of each execution, by action",
            duration.clone(),
        );
        registry.register(
            "queue_wait_seconds",
            "Time from accept to start",
            wait.clone(),
        );
        Self {
            registry,
            ended,
            accepted,
            rejected_full,
            queue,
            duration,
            wait,
        }
    }
}

impl Metrics {
    pub fn accepted(&self) {
        self.accepted.inc();
    }

    pub fn rejected_full(&self) {
        self.rejected_full.inc();
    }

    pub fn queue_depth(&self, pending: usize, running: usize) {
        let set = |state: &str, n: usize| {
            self.queue
                .get_or_create(&StateLabel {
                    state: state.into(),
                })
                .set(n as i64);
        };
        set("pending", pending);
        set("running", running);
    }

    pub fn started(&self, waited: Duration) {
        self.wait.observe(waited.as_secs_f64());
    }

    pub fn ended(&self, action: &str, status: &str, ran: Option<Duration>) {
        self.ended
            .get_or_create(&StatusLabel {
                status: status.into(),
            })
            .inc();
        if let Some(ran) = ran {
            self.duration
                .get_or_create(&ActionLabel {
                    action: action.into(),
                })
                .observe(ran.as_secs_f64());
        }
    }

    /// The text exposition format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String does not fail");
        out
    }
}
