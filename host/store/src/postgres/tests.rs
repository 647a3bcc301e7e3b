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

/// What autovacuum leaves on an idle system (the queue emptied, its pages
/// still there, every table analyzed), plans cached from then on, and a
/// backlog of 2,000 entries arriving after.
const IDLE_THEN_BACKLOG: &str = "\
    INSERT INTO queue (id, payload) SELECT 'done' || i, '\\x00' FROM generate_series(1, 500) i; \
    DELETE FROM queue; ANALYZE; \
    SET plan_cache_mode = force_generic_plan; \
    INSERT INTO queue (id, payload) SELECT 'entry' || i, '\\x00' FROM generate_series(1, 2000) i";

/// Prepare `statement` as `name` (with `types`), run `runs` (enough for
/// the cached plan), then count the rows of `tables` that `last` touches.
async fn touched_by_cached_plan(
    client: &tokio_postgres::Client,
    (name, types, statement): (&str, &str, &str),
    runs: &[String],
    last: &str,
    tables: &[&str],
) -> Result<f64, tokio_postgres::Error> {
    client.batch_execute(IDLE_THEN_BACKLOG).await?;
    client
        .batch_execute(&format!("PREPARE {name} ({types}) AS {statement}"))
        .await?;
    for run in runs {
        client
            .batch_execute(&format!("EXECUTE {name}{run}"))
            .await?;
    }
    let explained = client
        .simple_query(&format!(
            "EXPLAIN (ANALYZE, FORMAT JSON) EXECUTE {name}{last}"
        ))
        .await?;
    let text = explained
        .iter()
        .find_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(row) => row.get(0).map(str::to_owned),
            _ => None,
        })
        .expect("EXPLAIN answers a row");
    let plan: serde_json::Value = serde_json::from_str(&text).unwrap();
    Ok(tables
        .iter()
        .map(|t| rows_touched(&plan[0]["Plan"], t))
        .sum())
}

/// A claim planned on an idle queue must still find its rows by index and
/// address in a backlog. (One that joined its locked rows back to the
/// queue walked the whole backlog, 2,008 rows to take one: 1.75 ms per
/// claim.)
#[test]
fn a_claim_planned_on_an_idle_queue_does_not_walk_a_backlog() {
    let store = PgStore::open(&PgCluster::shared().database()).unwrap();
    let touched = store
        .call_unflushed(|client, _| async move {
            let claim = "('w', ARRAY[0], 30000, false)".to_owned();
            let statement = super::lease::claim(1);
            touched_by_cached_plan(
                &client,
                ("claim", "text, integer[], float8, boolean", &statement),
                &vec![claim.clone(); 6],
                &claim,
                &["queue", "executions"],
            )
            .await
        })
        .unwrap();
    // The seventh claim passes the six claimed entries and takes one: a
    // few dozen rows at most, never the 2,000 of the backlog.
    assert!(touched < 100.0, "a claim touched {touched} rows");
}
