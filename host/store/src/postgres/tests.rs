//! The contract checks on a real PostgreSQL server: one private cluster
//! for this test binary (wasmflow-testkit), a database per check.

use super::{PgStore, MIGRATIONS};
use crate::{Store, StoreError};
use wasmflow_testkit::PgCluster;

#[test]
fn postgres_meets_the_contract() {
    let cluster = PgCluster::shared();
    crate::contract::all(&|| {
        let url = cluster.database();
        Box::new(move || Store::new(PgStore::open(&url).unwrap()))
    });
}

#[test]
fn postgres_tokens_meet_the_contract() {
    let url = PgCluster::shared().database();
    let store = PgStore::open(&url).unwrap();
    crate::contract::token_book(&store);
}

/// A database migrated by a newer wasmflow is refused, and left as it was.
#[test]
fn a_newer_schema_is_refused() {
    let url = PgCluster::shared().database();
    let store = PgStore::open(&url).unwrap();
    let newer = MIGRATIONS.len() as i32 + 1;
    store
        .call(move |client, _| async move {
            client
                .execute("UPDATE wasmflow_schema SET version = $1", &[&newer])
                .await
        })
        .unwrap();
    drop(store);
    let err = PgStore::open(&url).err().expect("refused");
    assert!(
        matches!(err, StoreError::SchemaTooNew { found, .. } if found == newer),
        "{err}"
    );
    let text = err.to_string();
    assert!(text.contains("newer than this wasmflow knows"), "{text}");
    assert!(!text.contains("password"), "{text}");
}

/// A server that is not there is an open error naming it, not a hang.
#[test]
fn an_unreachable_server_is_named() {
    let err = PgStore::open("postgres://nobody:secret@127.0.0.1:1/none")
        .err()
        .expect("refused");
    let text = err.to_string();
    assert!(matches!(err, StoreError::Open { .. }), "{text}");
    assert!(text.contains("127.0.0.1:1"), "{text}");
    assert!(
        !text.contains("secret"),
        "the password is never shown: {text}"
    );
}

/// `store copy` from a sled home into PostgreSQL and back out to sled.
#[test]
fn a_sled_store_copies_to_postgres_and_back() {
    use crate::{token_book, Location};
    let dir = tempfile::tempdir().unwrap();
    let side = |location: Location| {
        (
            Store::open_at(&location).unwrap(),
            token_book(&location).unwrap(),
        )
    };
    let a = side(Location::in_home(&dir.path().join("a")));
    let b = side(Location::Postgres(PgCluster::shared().database()));
    let c = side(Location::in_home(&dir.path().join("c")));
    crate::contract::copy_moves_everything((&a.0, &*a.1), (&b.0, &*b.1), (&c.0, &*c.1));
}

#[test]
fn postgres_leases_meet_the_contract() {
    let url = PgCluster::shared().database();
    crate::contract::shared_queue(&|| Store::new(PgStore::open(&url).unwrap()));
}

/// Rows of `table` a plan (EXPLAIN's JSON) touched: returned or filtered
/// out by its scans, over all their loops.
fn rows_touched(plan: &serde_json::Value, table: &str) -> f64 {
    let here = if plan["Relation Name"] == table {
        let n = |k: &str| plan[k].as_f64().unwrap_or(0.0);
        (n("Actual Rows") + n("Rows Removed by Filter")) * n("Actual Loops").max(1.0)
    } else {
        0.0
    };
    let below = plan["Plans"].as_array().map_or(0.0, |plans| {
        plans.iter().map(|p| rows_touched(p, table)).sum()
    });
    here + below
}

/// Autovacuum analyzes an idle system's queue: emptied, its pages still
/// there. The plan a claim caches then (for a queue of one row) must still
/// find its rows by index and address when a backlog of thousands
/// arrives. (A claim that joined its locked rows back
/// to the queue walked the whole backlog: 1.75 ms per claim.)
#[test]
fn a_claim_planned_on_an_idle_queue_does_not_walk_a_backlog() {
    let url = PgCluster::shared().database();
    let store = PgStore::open(&url).unwrap();
    let touched = store
        .call_unflushed(|client, _| async move {
            client
                .batch_execute(
                    "INSERT INTO queue (id, payload) \
                     SELECT 'done' || i, '\\x00' FROM generate_series(1, 500) i; \
                     DELETE FROM queue; ANALYZE queue; \
                     SET plan_cache_mode = force_generic_plan; \
                     INSERT INTO queue (id, payload) \
                     SELECT 'entry' || i, '\\x00' FROM generate_series(1, 2000) i",
                )
                .await?;
            client
                .batch_execute(&format!(
                    "PREPARE claim (text, integer[], float8, boolean) AS {}",
                    super::lease::claim(1)
                ))
                .await?;
            let execute = "EXECUTE claim('w', ARRAY[0], 30000, false)";
            for _ in 0..6 {
                client.batch_execute(execute).await?;
            }
            let explained = client
                .simple_query(&format!("EXPLAIN (ANALYZE, FORMAT JSON) {execute}"))
                .await?;
            let text = explained
                .iter()
                .find_map(|m| match m {
                    tokio_postgres::SimpleQueryMessage::Row(row) => row.get(0).map(str::to_owned),
                    _ => None,
                })
                .expect("EXPLAIN answers a row");
            let json: serde_json::Value = serde_json::from_str(&text).unwrap();
            Ok(rows_touched(&json[0]["Plan"], "queue"))
        })
        .unwrap();
    // The seventh claim passes the six claimed entries and takes one: a
    // few dozen rows at most, never the 2,000 of the backlog.
    assert!(touched < 100.0, "a claim touched {touched} queue rows");
}
