//! The event bus's trees: `triggers` (instance id -> instance JSON),
//! `unprocessed_triggers` (instance id -> nothing: the ones some rule may
//! still have to enforce) and `enforcements` (instance id + rule name ->
//! enforcement JSON).
//!
//! A new instance's index entry is written before the instance, and a
//! processed one's removed after: a crash leaves at most a stale index
//! entry, which readers drop, never an unprocessed instance that no index
//! names.

use super::{At, SledStore};
use crate::error::StoreError;
use crate::record::ExecutionId;
use crate::{Enforcement, TriggerInstance};

fn corrupt(what: &str, e: serde_json::Error) -> StoreError {
    StoreError::Other(format!("a stored {what} is not readable: {e}"))
}

fn enforcement_key(instance: ExecutionId, rule: &str) -> Vec<u8> {
    let mut key = instance.key().to_vec();
    key.extend_from_slice(rule.as_bytes());
    key
}

impl SledStore {
    pub(super) fn put_trigger_instance(&self, t: &TriggerInstance) -> Result<(), StoreError> {
        let key = t.id.key();
        let body = serde_json::to_vec(t).expect("trigger instances serialize");
        if t.processed {
            self.triggers.insert(key, body).at(self)?;
            self.unprocessed.remove(key).at(self)?;
        } else {
            self.unprocessed.insert(key, &[][..]).at(self)?;
            self.triggers.insert(key, body).at(self)?;
        }
        self.flush_db()?;
        Ok(())
    }

    pub(super) fn put_trigger_instance_new(&self, t: &TriggerInstance) -> Result<bool, StoreError> {
        let key = t.id.key();
        let body = serde_json::to_vec(t).expect("trigger instances serialize");
        if !t.processed {
            // First, as in `put_trigger_instance`: if one is kept already,
            // this entry is stale and readers drop it.
            self.unprocessed.insert(key, &[][..]).at(self)?;
        }
        let kept = self
            .triggers
            .compare_and_swap(key, None as Option<&[u8]>, Some(body))
            .at(self)?
            .is_ok();
        self.flush_db()?;
        Ok(kept)
    }

    pub(super) fn purge_trigger_instances(
        &self,
        before: std::time::SystemTime,
        dry_run: bool,
    ) -> Result<(usize, usize), StoreError> {
        let cutoff = ExecutionId::first_at(before).key();
        let (mut instances, mut enforcements) = (0, 0);
        for item in self.triggers.range(..cutoff) {
            let (k, v) = item.at(self)?;
            let t: TriggerInstance =
                serde_json::from_slice(&v).map_err(|e| corrupt("trigger instance", e))?;
            if !t.processed {
                continue;
            }
            let own: Vec<sled::IVec> = self
                .enforcements
                .scan_prefix(&k)
                .keys()
                .collect::<Result<_, _>>()
                .at(self)?;
            instances += 1;
            enforcements += own.len();
            if dry_run {
                continue;
            }
            // Enforcements first: an instance never outlives what it
            // caused by a crash in between, only the other way round.
            for e in own {
                self.enforcements.remove(e).at(self)?;
            }
            self.triggers.remove(&k).at(self)?;
        }
        if !dry_run && instances > 0 {
            self.flush_db()?;
        }
        Ok((instances, enforcements))
    }

    pub(super) fn trigger_instance(
        &self,
        id: ExecutionId,
    ) -> Result<Option<TriggerInstance>, StoreError> {
        match self.triggers.get(id.key()).at(self)? {
            Some(v) => Ok(Some(
                serde_json::from_slice(&v).map_err(|e| corrupt("trigger instance", e))?,
            )),
            None => Ok(None),
        }
    }

    pub(super) fn trigger_instances(
        &self,
        unprocessed: bool,
        limit: usize,
    ) -> Result<Vec<TriggerInstance>, StoreError> {
        let mut out = Vec::new();
        if unprocessed {
            for item in self.unprocessed.iter() {
                let (k, _) = item.at(self)?;
                let id = ExecutionId::from_key(&k).ok_or(StoreError::BadKey)?;
                // A stale index entry (see the module's doc) is dropped.
                if let Some(t) = self.trigger_instance(id)?.filter(|t| !t.processed) {
                    out.push(t);
                    if out.len() >= limit {
                        break;
                    }
                }
            }
        } else {
            for item in self.triggers.iter().rev().take(limit) {
                let (_, v) = item.at(self)?;
                out.push(serde_json::from_slice(&v).map_err(|e| corrupt("trigger instance", e))?);
            }
        }
        Ok(out)
    }

    pub(super) fn put_enforcements_of(&self, all: &[Enforcement]) -> Result<(), StoreError> {
        let mut batch = sled::Batch::default();
        for e in all {
            let body = serde_json::to_vec(e).expect("enforcements serialize");
            batch.insert(enforcement_key(e.instance, &e.rule), body);
        }
        self.enforcements.apply_batch(batch).at(self)?;
        self.flush_db()?;
        Ok(())
    }

    pub(super) fn enforcements_of(
        &self,
        instance: Option<ExecutionId>,
        limit: usize,
    ) -> Result<Vec<Enforcement>, StoreError> {
        let read = |v: &[u8]| serde_json::from_slice(v).map_err(|e| corrupt("enforcement", e));
        match instance {
            Some(id) => self
                .enforcements
                .scan_prefix(id.key())
                .map(|item| read(&item.at(self)?.1))
                .collect(),
            None => self
                .enforcements
                .iter()
                .rev()
                .take(limit)
                .map(|item| read(&item.at(self)?.1))
                .collect(),
        }
    }
}
