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
