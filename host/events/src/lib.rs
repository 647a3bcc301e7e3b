//! The event bus: what can happen (trigger types), what to do when it
//! does (rules: criteria over the event's payload, and an action with an
//! input made from it), and the decision a rule makes on one event.
//!
//! This crate owns the rule language (st2's, see `rule`), StackStorm's
//! criteria operators (`criteria`) and when timers fire (`timer`); it
//! decides, and runs nothing: the
//! server records each event and each decision and starts what a rule
//! asks for through the same runnable as the API. What it must not touch:
//! the store, the runtime, HTTP.

pub mod criteria;
pub mod rule;
pub mod timer;
pub mod trigger;

pub use criteria::{Criterion, CriterionSpec, Operator, OPERATORS};
pub use rule::{Check, Decision, Evaluation, Rule};
pub use trigger::TriggerType;
