//! wasmflow workflows: YAML that chains actions, and the scheduler that
//! runs it durably.
//!
//! This crate owns the workflow language ([`model`]), reading and checking
//! a file with positions ([`Definition`], [`check`]), Jinja expressions
//! ([`expr`]), the journal of state transitions ([`journal`]), the
//! [`Scheduler`] (`scheduler/`: its API over the driver, jobs, recovery
//! and the pure decisions), what a front end starts ([`Runnable`]) and
//! canceling from another process ([`cancel`]), where `oci://` and
//! `pack.item` actions come from ([`components`]), which files of a
//! directory are actions ([`catalog`]), and an execution's tasks as a
//! graph ([`graph`]). It runs each task through the runtime as a child
//! execution and must not reach into the sandbox or print anything: the
//! CLI and the server are its front ends.

pub mod cancel;
pub mod catalog;
pub mod components;
pub mod definition;
pub mod expr;
pub mod grants;
pub mod graph;
pub mod inquiry;
pub mod journal;
pub mod model;
pub mod rehearsal;
pub mod runnable;
mod scheduler;
pub mod source;
pub mod types;
pub mod yaql;

pub use components::{resolve_pack, Components, NoRegistry, RegistryComponents};
pub use definition::{check, is_workflow_path, ActionRef, Definition};
pub use runnable::{PrepareError, Runnable};
pub use scheduler::{Observer, Request, Scheduler};
pub use source::{Position, Problem, Problems};

use wasmflow_runtime::RuntimeError;
use wasmflow_store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum WorkflowError {
    #[error("{0}")]
    Problems(Problems),
    #[error("invalid input: {0}")]
    Input(String),
    #[error("no execution {0}")]
    NotFound(String),
    #[error("execution {0} is not a workflow")]
    NotAWorkflow(String),
    /// `resume` of a workflow that is not paused, or a crash recovery of
    /// one that is.
    #[error("workflow execution {id} is {status}{}", if *status == wasmflow_store::Status::Paused { " (`wasmflow execution resume` goes on with it)" } else { ", not paused" })]
    NotPaused {
        id: String,
        status: wasmflow_store::Status,
    },
    #[error("unknown task `{task}` (the workflow's tasks are: {known})")]
    UnknownTask { task: String, known: String },
    #[error("the workflow file of execution {0} is not in the store")]
    MissingSource(String),
    #[error("the journal of workflow execution {id} is corrupt at entry {entry}: {message}")]
    CorruptJournal {
        id: String,
        entry: usize,
        message: String,
    },
    #[error("a task's runner failed: {0}")]
    Join(String),
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl WorkflowError {
    /// Whether the caller can fix it (exit status 2).
    pub fn is_usage(&self) -> bool {
        match self {
            WorkflowError::Problems(_)
            | WorkflowError::Input(_)
            | WorkflowError::NotFound(_)
            | WorkflowError::NotAWorkflow(_)
            | WorkflowError::NotPaused { .. }
            | WorkflowError::UnknownTask { .. } => true,
            WorkflowError::Runtime(e) => e.is_usage(),
            WorkflowError::Store(e) => e.is_usage(),
            _ => false,
        }
    }
}
