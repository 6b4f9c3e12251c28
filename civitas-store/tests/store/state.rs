//! Derived state: catch-up after falling behind, the applied marker, batch boundaries.

use std::convert::Infallible;

use civitas_store::{DerivedState, Log, LogReader, StoreError};

/// The state used in these tests: key = record index (big-endian), value = the record.
fn index_records(index: u64, record: &[u8], batch: &mut sled::Batch) -> Result<(), Infallible> {
    batch.insert(&index.to_be_bytes(), record);
    Ok(())
}

fn state_contents(state: &DerivedState) -> Vec<(u64, Vec<u8>)> {
    state
        .state()
        .iter()
        .map(|entry| entry.unwrap())
        .filter(|(key, _)| key.as_ref() != civitas_store::MARKER_KEY)
        .map(|(key, value)| {
            let key: [u8; 8] = key.as_ref().try_into().unwrap();
            (u64::from_be_bytes(key), value.to_vec())
        })
        .collect()
}

fn log_contents(log: &LogReader) -> Vec<(u64, Vec<u8>)> {
    log.iter_from(0).unwrap().map(Result::unwrap).collect()
}

#[test]
fn catch_up_applies_exactly_the_missing_records() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path().join("log")).unwrap();
    for i in 0..4u8 {
        log.append(&[[i]]).unwrap();
    }
    log.append(&[[4], [5], [6]]).unwrap();
    {
        let state = DerivedState::open(dir.path().join("state")).unwrap();
        assert_eq!(state.applied(), 0);
        assert_eq!(state.catch_up(&log.reader(), index_records).unwrap(), 7);
        assert_eq!(state.applied(), 7);
        assert_eq!(state_contents(&state), log_contents(&log.reader()));
    }
    // The state is closed; the log moves on (as it would while sled lost its last writes).
    log.append(&[[7]]).unwrap();
    log.append(&[[8], [9]]).unwrap();

    let state = DerivedState::open(dir.path().join("state")).unwrap();
    assert_eq!(state.applied(), 7);
    let mut seen = Vec::new();
    let replayed = state
        .catch_up(&log.reader(), |index, record, batch| {
            seen.push(index);
            index_records(index, record, batch)
        })
        .unwrap();
    assert_eq!((replayed, seen), (3, vec![7, 8, 9]));
    assert_eq!(state.applied(), 10);
    assert_eq!(state_contents(&state), log_contents(&log.reader()));
    // Nothing left to do.
    assert_eq!(state.catch_up(&log.reader(), index_records).unwrap(), 0);
}

#[test]
fn marker_and_data_change_together() {
    let dir = tempfile::tempdir().unwrap();
    let state = DerivedState::open(dir.path()).unwrap();
    let mut batch = sled::Batch::default();
    batch.insert("a", "1");
    state.apply(batch, 5).unwrap();
    assert_eq!(state.applied(), 5);

    // A batch whose marker does not advance changes nothing at all.
    for stale in [5, 3] {
        let mut batch = sled::Batch::default();
        batch.insert("b", "2");
        batch.remove("a");
        let error = state.apply(batch, stale).unwrap_err();
        assert!(
            matches!(error, StoreError::MarkerNotAdvanced { current: 5, requested } if requested == stale),
            "{error:?}"
        );
    }
    assert_eq!(state.state().get("a").unwrap().as_deref(), Some(&b"1"[..]));
    assert_eq!(state.state().get("b").unwrap(), None);
    drop(state);

    let state = DerivedState::open(dir.path()).unwrap();
    assert_eq!(state.applied(), 5);
    assert_eq!(state.state().len(), 2, "the data and the marker");
    assert!(
        state
            .state()
            .contains_key(civitas_store::MARKER_KEY)
            .unwrap()
    );
}

#[test]
fn apply_each_writes_in_order_then_the_marker() {
    let dir = tempfile::tempdir().unwrap();
    let state = DerivedState::open(dir.path()).unwrap();
    let changes: [(&[u8], Option<&[u8]>); 4] = [
        (b"a", Some(b"1")),
        (b"b", Some(b"2")),
        (b"a", Some(b"3")),
        (b"b", None),
    ];
    state.apply_each(changes, 4).unwrap();
    assert_eq!(state.applied(), 4);
    assert_eq!(state.state().get("a").unwrap().as_deref(), Some(&b"3"[..]));
    assert_eq!(state.state().get("b").unwrap(), None);

    // A marker that does not advance writes nothing.
    let error = state
        .apply_each([(&b"c"[..], Some(&b"4"[..]))], 4)
        .unwrap_err();
    assert!(
        matches!(
            error,
            StoreError::MarkerNotAdvanced {
                current: 4,
                requested: 4
            }
        ),
        "{error:?}"
    );
    assert_eq!(state.state().get("c").unwrap(), None);
    drop(state);

    let state = DerivedState::open(dir.path()).unwrap();
    assert_eq!(state.applied(), 4);
    assert_eq!(state.state().get("a").unwrap().as_deref(), Some(&b"3"[..]));
}

#[test]
fn state_ahead_of_the_log_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path().join("log")).unwrap();
    log.append(&[b"only"]).unwrap();
    let state = DerivedState::open(dir.path().join("state")).unwrap();
    state.apply(sled::Batch::default(), 2).unwrap();
    let error = state.catch_up(&log.reader(), index_records).unwrap_err();
    assert!(
        matches!(
            error,
            StoreError::StateAhead {
                applied: 2,
                log_len: 1
            }
        ),
        "{error:?}"
    );
}

#[test]
fn catch_up_commits_only_whole_log_batches() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path().join("log")).unwrap();
    log.append(&[b"a0", b"a1"]).unwrap();
    log.append(&[b"b2", b"b3", b"b4"]).unwrap();
    let state = DerivedState::open(dir.path().join("state")).unwrap();

    let error = state
        .catch_up(&log.reader(), |index, record, batch| {
            if index == 3 {
                return Err("rejected by the test");
            }
            // Earlier log batches are visible in the state; this one's records are not yet.
            let committed = state_contents(&state).len() as u64;
            assert_eq!(
                committed,
                if index < 2 { 0 } else { 2 },
                "at record {index}"
            );
            batch.insert(&index.to_be_bytes(), record);
            Ok(())
        })
        .unwrap_err();
    assert!(
        matches!(&error, StoreError::Replay { index: 3, .. }),
        "{error:?}"
    );
    assert_eq!(error.to_string(), "replaying log record 3");
    // Batch a was committed, batch b was not touched.
    assert_eq!(state.applied(), 2);
    assert_eq!(state_contents(&state), log_contents(&log.reader())[..2]);

    assert_eq!(state.catch_up(&log.reader(), index_records).unwrap(), 3);
    assert_eq!(state_contents(&state), log_contents(&log.reader()));
}

#[test]
fn extra_trees_and_reserved_names() {
    let dir = tempfile::tempdir().unwrap();
    let state = DerivedState::open(dir.path()).unwrap();
    let cache = state.tree("cache").unwrap();
    cache.insert("k", "v").unwrap();
    assert_eq!(
        state.tree("cache").unwrap().get("k").unwrap().as_deref(),
        Some(&b"v"[..])
    );
    assert!(matches!(
        state.tree("__civitas_store_meta"),
        Err(StoreError::ReservedTreeName { .. })
    ));
}

#[test]
fn a_marker_kept_by_an_older_version_is_read() {
    let dir = tempfile::tempdir().unwrap();
    {
        // Before the marker moved into the state tree it lived in a tree of its own.
        let db = sled::open(dir.path()).unwrap();
        let meta = db.open_tree("__civitas_store_meta").unwrap();
        meta.insert("applied", &7u64.to_be_bytes()[..]).unwrap();
        db.flush().unwrap();
    }
    let state = DerivedState::open(dir.path()).unwrap();
    assert_eq!(state.applied(), 7);
    let error = state.apply(sled::Batch::default(), 7).unwrap_err();
    assert!(
        matches!(error, StoreError::MarkerNotAdvanced { current: 7, .. }),
        "{error:?}"
    );
    state.apply(sled::Batch::default(), 8).unwrap();
    drop(state);
    assert_eq!(DerivedState::open(dir.path()).unwrap().applied(), 8);
}
