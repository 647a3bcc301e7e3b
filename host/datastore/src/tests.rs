use super::*;
use serde_json::json;
use wasmflow_store::Location;

struct Site {
    dir: tempfile::TempDir,
    ds: Datastore,
}

fn site() -> Site {
    let dir = tempfile::tempdir().unwrap();
    let book = wasmflow_store::key_book(&Location::Dir(dir.path().join("store"))).unwrap();
    let ds = Datastore::new(book, dir.path().join("secret.key"));
    Site { dir, ds }
}

fn everything_on_disk(dir: &Path) -> Vec<u8> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        if e.path().is_file() {
            out.extend(std::fs::read(e.path()).unwrap());
        }
    }
    out
}

fn contains(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

#[test]
fn keys_are_set_read_listed_and_deleted_by_name() {
    let s = site();
    s.ds.set("system.region", "eu-west", false, None).unwrap();
    s.ds.set("user.ann.editor", "vim", false, None).unwrap();
    let k = s.ds.get("system.region", false).unwrap().unwrap();
    assert_eq!((k.value.as_str(), k.secret), ("eu-west", false));
    let names: Vec<String> = s.ds.list("").unwrap().into_iter().map(|k| k.name).collect();
    assert_eq!(names, ["system.region", "user.ann.editor"]);
    assert_eq!(s.ds.list("user.").unwrap().len(), 1);
    assert!(s.ds.delete("system.region").unwrap());
    assert!(!s.ds.delete("system.region").unwrap());
    assert_eq!(s.ds.get("system.region", false).unwrap(), None);
}

#[test]
fn names_carry_a_scope() {
    let s = site();
    for bad in [
        "region",
        "system.",
        "system..a",
        "user.ann",
        "sys.a",
        "system.a b",
        "global.x",
    ] {
        let e = s.ds.set(bad, "v", false, None).unwrap_err();
        assert!(
            matches!(&e, DatastoreError::BadName { name, .. } if name == bad),
            "{bad}: {e}"
        );
        assert!(e.is_usage());
    }
    assert!(check_name("system.vm.template-dir").is_ok());
    assert!(check_name("user.ann.db_password").is_ok());
}

#[test]
fn a_key_is_gone_once_its_ttl_has_passed() {
    let s = site();
    s.ds.set("system.short", "x", false, Some(Duration::from_millis(300)))
        .unwrap();
    s.ds.set("system.long", "y", false, Some(Duration::from_secs(3600)))
        .unwrap();
    assert!(s
        .ds
        .get("system.short", false)
        .unwrap()
        .unwrap()
        .expires_at
        .is_some());
    std::thread::sleep(Duration::from_millis(400));
    assert_eq!(s.ds.get("system.short", false).unwrap(), None);
    let names: Vec<String> =
        s.ds.list("system.")
            .unwrap()
            .into_iter()
            .map(|k| k.name)
            .collect();
    assert_eq!(names, ["system.long"]);
    assert!(!s.ds.delete("system.short").unwrap());
}

#[test]
fn secrets_are_encrypted_at_rest_masked_and_revealed_on_request() {
    let s = site();
    let password = "correct-horse-battery-staple";
    s.ds.set("system.db_password", password, true, None)
        .unwrap();
    assert!(!contains(&everything_on_disk(s.dir.path()), password));
    // The key file: made on first use, mode 0600, outside the store.
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(s.dir.path().join("secret.key"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let shown = s.ds.get("system.db_password", false).unwrap().unwrap();
    assert_eq!((shown.value.as_str(), shown.secret), (MASK, true));
    assert_eq!(s.ds.list("").unwrap()[0].value, MASK);
    assert_eq!(
        s.ds.get("system.db_password", true).unwrap().unwrap().value,
        password
    );
    assert_eq!(
        s.ds.value("system.db_password").unwrap(),
        Some((password.to_owned(), true))
    );
    // The same secret twice: two ciphertexts (a fresh nonce each time).
    let book = wasmflow_store::key_book(&Location::Dir(s.dir.path().join("store"))).unwrap();
    let first = book.get("system.db_password").unwrap().unwrap().value;
    s.ds.set("system.db_password", password, true, None)
        .unwrap();
    assert_ne!(
        book.get("system.db_password").unwrap().unwrap().value,
        first
    );
}

#[test]
fn a_ciphertext_moved_to_another_name_or_read_without_the_key_does_not_decrypt() {
    let s = site();
    s.ds.set("system.a", "alpha", true, None).unwrap();
    let book = wasmflow_store::key_book(&Location::Dir(s.dir.path().join("store"))).unwrap();
    let mut moved = book.get("system.a").unwrap().unwrap();
    moved.name = "system.b".into();
    book.set(moved).unwrap();
    let e = s.ds.get("system.b", true).unwrap_err();
    assert!(matches!(e, DatastoreError::Undecryptable { .. }), "{e}");
    // Another machine's key.
    let other = Datastore::new(book.clone(), s.dir.path().join("other.key"));
    let e = other.get("system.a", true).unwrap_err();
    assert!(
        e.to_string()
            .contains("does not exist, so secret `system.a` cannot be read"),
        "{e}"
    );
    other.set("system.c", "x", true, None).unwrap();
    let e = s.ds.get("system.c", true).unwrap_err();
    assert!(matches!(e, DatastoreError::Undecryptable { .. }), "{e}");
}

#[test]
fn rotation_re_encrypts_every_secret_under_a_new_key() {
    let s = site();
    s.ds.set("system.a", "alpha", true, None).unwrap();
    s.ds.set("system.b", "beta", true, None).unwrap();
    s.ds.set("system.plain", "gamma", false, None).unwrap();
    let old_key = std::fs::read(s.dir.path().join("secret.key")).unwrap();
    let book = wasmflow_store::key_book(&Location::Dir(s.dir.path().join("store"))).unwrap();
    let before = book.get("system.a").unwrap().unwrap().value;
    assert_eq!(s.ds.rotate().unwrap(), 2);
    assert_ne!(
        std::fs::read(s.dir.path().join("secret.key")).unwrap(),
        old_key
    );
    assert!(!s.dir.path().join("secret.key.next").exists());
    assert_ne!(book.get("system.a").unwrap().unwrap().value, before);
    assert_eq!(s.ds.get("system.a", true).unwrap().unwrap().value, "alpha");
    assert_eq!(s.ds.get("system.b", true).unwrap().unwrap().value, "beta");
    assert_eq!(
        s.ds.get("system.plain", true).unwrap().unwrap().value,
        "gamma"
    );
    // The old key no longer opens them.
    std::fs::write(s.dir.path().join("old.key"), &old_key).unwrap();
    let old = Datastore::new(book, s.dir.path().join("old.key"));
    assert!(matches!(
        old.get("system.a", true),
        Err(DatastoreError::Undecryptable { .. })
    ));
}

#[test]
fn an_interrupted_rotation_loses_nothing() {
    let s = site();
    s.ds.set("system.a", "alpha", true, None).unwrap();
    // Stopped after the next key was written, before anything moved.
    s.ds.key.begin_rotation().unwrap();
    assert_eq!(s.ds.get("system.a", true).unwrap().unwrap().value, "alpha");
    // A secret set meanwhile is under the next key; both still read.
    s.ds.set("system.b", "beta", true, None).unwrap();
    assert_eq!(s.ds.get("system.b", true).unwrap().unwrap().value, "beta");
    // The next rotation takes up the same next key and finishes.
    assert_eq!(s.ds.rotate().unwrap(), 2);
    assert_eq!(s.ds.get("system.a", true).unwrap().unwrap().value, "alpha");
    assert_eq!(s.ds.get("system.b", true).unwrap().unwrap().value, "beta");
}

#[test]
fn a_load_sets_everything_or_nothing() {
    let s = site();
    let n =
        s.ds.load(&json!({
            "system.region": "eu-west",
            "system.replicas": 3,
            "system.db_password": {"value": "pw", "secret": true},
            "system.session": {"value": "s", "ttl": "1h"},
        }))
        .unwrap();
    assert_eq!(n, 4);
    assert_eq!(
        s.ds.get("system.replicas", false).unwrap().unwrap().value,
        "3"
    );
    assert_eq!(
        s.ds.get("system.db_password", false)
            .unwrap()
            .unwrap()
            .value,
        MASK
    );
    assert!(s
        .ds
        .get("system.session", false)
        .unwrap()
        .unwrap()
        .expires_at
        .is_some());
    for (bad, says) in [
        (
            json!({"system.ok": "1", "nope": "2"}),
            "`nope` is not a key name",
        ),
        (
            json!({"system.x": {"value": "1", "sceret": true}}),
            "system.x: unknown field `sceret`",
        ),
        (
            json!({"system.x": {"value": "1", "ttl": "soon"}}),
            "system.x: ttl:",
        ),
        (
            json!({"system.x": [1, 2]}),
            "system.x: expected a string, number or boolean",
        ),
        (json!(["system.x"]), "expected a map"),
    ] {
        let e = s.ds.load(&bad).unwrap_err();
        assert!(e.to_string().contains(says), "{e}");
    }
    assert_eq!(
        s.ds.get("system.ok", false).unwrap(),
        None,
        "nothing of a bad load is set"
    );
}

#[test]
fn settings_are_kept_beside_the_keys_but_never_listed_with_them() {
    let s = site();
    s.ds.set("system.region", "eu", false, None).unwrap();
    assert_eq!(s.ds.setting("rules.r.enabled").unwrap(), None);
    s.ds.set_setting("rules.r.enabled", "false").unwrap();
    assert_eq!(
        s.ds.setting("rules.r.enabled").unwrap().as_deref(),
        Some("false")
    );
    let names: Vec<String> = s.ds.list("").unwrap().into_iter().map(|k| k.name).collect();
    assert_eq!(names, ["system.region"]);
    // No key can be named so: a key's name starts with a scope.
    assert!(s
        .ds
        .set("wasmflow.rules.r.enabled", "true", false, None)
        .is_err());
}

#[test]
fn sealed_values_open_under_their_key_only() {
    let s = site();
    let sealed = s.ds.seal("hunter2").unwrap();
    let found = reference::find(&sealed);
    let [(_, reference::Reference::Sealed(ct))] = found.as_slice() else {
        panic!("{sealed}")
    };
    assert_eq!(s.ds.unseal(ct).unwrap(), "hunter2");
    assert!(!contains(sealed.as_bytes(), "hunter2"));
    let other = Datastore::new(
        wasmflow_store::key_book(&Location::Dir(s.dir.path().join("store"))).unwrap(),
        s.dir.path().join("other.key"),
    );
    other.seal("x").unwrap();
    assert!(matches!(
        other.unseal(ct),
        Err(DatastoreError::Unsealable { .. })
    ));
}
