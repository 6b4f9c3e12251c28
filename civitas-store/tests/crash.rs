//! A real crash: a child process (this test binary, re-executed) appends through a
//! [`GroupCommitLog`] and prints every acknowledged index; the parent kills it with SIGKILL,
//! reopens the log and checks every acknowledged record. Three rounds on the same directory,
//! so each child also recovers from the previous kill.
//!
//! This is a test binary of its own: between `fork` and `exec`, a child process holds copies of
//! all of the parent's file descriptors, and with them the log's `flock`. Tests in the same
//! process that reopen a log could then see [`StoreError::Locked`](civitas_store::StoreError).

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::env;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use civitas_store::{DerivedState, GroupCommitLog, Log};

/// Set in the child's environment to the directory to write to.
const CHILD_DIR: &str = "CIVITAS_STORE_CRASH_CHILD_DIR";
/// Set in the child's environment to the round number.
const CHILD_ROUND: &str = "CIVITAS_STORE_CRASH_CHILD_ROUND";

const ROUNDS: u64 = 3;
/// Acknowledgements to see before killing the child.
const ACKS_BEFORE_KILL: usize = 400;
const WRITER_TASKS: u64 = 16;

/// What an acknowledged record holds: several KiB at times, so writes span pages.
fn record(round: u64, task: u64, n: u64) -> Vec<u8> {
    let unit = format!("round {round} task {task} record {n};");
    unit.repeat(1 + ((n * 13 + task * 7) % 150) as usize)
        .into_bytes()
}

/// The derived state of these tests: key = record index, value = the record.
fn index_records(index: u64, record: &[u8], batch: &mut sled::Batch) -> Result<(), Infallible> {
    batch.insert(&index.to_be_bytes(), record);
    Ok(())
}

/// The child's entry point: a no-op unless the parent set [`CHILD_DIR`].
#[test]
fn child() {
    let Some(dir) = env::var_os(CHILD_DIR) else {
        return;
    };
    let round: u64 = env::var(CHILD_ROUND).unwrap().parse().unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(child_main(Path::new(&dir), round));
}

async fn child_main(dir: &Path, round: u64) {
    let log = Log::open(dir.join("log")).unwrap();
    let state = Arc::new(DerivedState::open(dir.join("state")).unwrap());
    state.catch_up(&log.reader(), index_records).unwrap();
    let log = Arc::new(GroupCommitLog::new(log).unwrap());
    let applied = Arc::new(tokio::sync::Notify::new());

    // The applier: moves the derived state forward over whatever is durable.
    let applier = {
        let (log, state, applied) = (Arc::clone(&log), Arc::clone(&state), Arc::clone(&applied));
        tokio::spawn(async move {
            loop {
                applied.notified().await;
                let (from, to) = (state.applied(), log.len());
                if from < to {
                    let mut batch = sled::Batch::default();
                    for (index, record) in (from..).zip(log.read_range(from, to).unwrap()) {
                        index_records(index, &record, &mut batch).unwrap();
                    }
                    state.apply(batch, to).unwrap();
                }
            }
        })
    };
    for task in 0..WRITER_TASKS {
        let (log, applied) = (Arc::clone(&log), Arc::clone(&applied));
        tokio::spawn(async move {
            for n in (0..).step_by(3) {
                // Every fourth append is a batch of three records.
                let count = if n % 4 == 3 { 3 } else { 1 };
                let records: Vec<Vec<u8>> =
                    (n..n + count).map(|n| record(round, task, n)).collect();
                let first = log.append_batch(records).await.unwrap();
                let mut out = std::io::stdout().lock();
                for (index, n) in (first..).zip(n..n + count) {
                    writeln!(out, "ACK {index} {round} {task} {n}").unwrap();
                }
                out.flush().unwrap();
                drop(out);
                applied.notify_one();
            }
        });
    }
    // The parent kills this process long before; never outlive a parent that died.
    tokio::time::sleep(Duration::from_secs(120)).await;
    applier.abort();
    std::process::exit(3);
}

/// `(index, round, task, n)` from an `ACK` line.
fn parse_ack(line: &str) -> Option<(u64, u64, u64, u64)> {
    let mut fields = line[line.find("ACK ")? + 4..].split_whitespace();
    let mut next = || fields.next()?.parse().ok();
    Some((next()?, next()?, next()?, next()?))
}

#[test]
fn kill_9_loses_no_acknowledged_record() {
    let dir = tempfile::tempdir().unwrap();
    let exe = env::current_exe().unwrap();
    let mut acked: BTreeMap<u64, Vec<u8>> = BTreeMap::new();
    for round in 0..ROUNDS {
        let mut child = Command::new(&exe)
            .args(["--exact", "child", "--nocapture", "--test-threads=1"])
            .env(CHILD_DIR, dir.path())
            .env(CHILD_ROUND, round.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (lines, received) = mpsc::channel();
        let pump = thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                if lines.send(line.unwrap()).is_err() {
                    break;
                }
            }
        });
        let mut record_ack = |line: &str| {
            if let Some((index, r, task, n)) = parse_ack(line) {
                let previous = acked.insert(index, record(r, task, n));
                assert!(previous.is_none(), "index {index} acknowledged twice");
                true
            } else {
                false
            }
        };

        // Bounded wait for enough acknowledgements, then SIGKILL in the middle of the writing.
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut acks = 0;
        while acks < ACKS_BEFORE_KILL {
            let left = deadline.saturating_duration_since(Instant::now());
            match received.recv_timeout(left) {
                Ok(line) => acks += usize::from(record_ack(&line)),
                Err(error) => panic!("round {round}: child gave {acks} acks, then {error:?}"),
            }
        }
        child.kill().unwrap();
        let status = child.wait().unwrap();
        assert!(
            !status.success(),
            "round {round}: child exited with {status}"
        );
        // Acknowledgements already in the pipe count too.
        for line in received.iter() {
            acks += usize::from(record_ack(&line));
        }
        pump.join().unwrap();

        let log = Log::open(dir.path().join("log")).unwrap();
        for (index, record) in &acked {
            assert_eq!(
                &log.read(*index).unwrap(),
                record,
                "round {round}: record {index}"
            );
        }
        // The derived state is a prefix of the log, marker and data alike (sled may lose its
        // last writes, never half a batch), and catch-up completes it.
        let state = DerivedState::open(dir.path().join("state")).unwrap();
        let applied = state.applied();
        let keys: Vec<u64> = state
            .state()
            .iter()
            .keys()
            .map(|key| key.unwrap())
            .filter(|key| key.as_ref() != civitas_store::MARKER_KEY)
            .map(|key| u64::from_be_bytes(key.as_ref().try_into().unwrap()))
            .collect();
        assert_eq!(keys, (0..applied).collect::<Vec<_>>(), "round {round}");
        state.catch_up(&log.reader(), index_records).unwrap();
        assert_eq!(state.applied(), log.len());
        println!(
            "crash round {round}: {acks} acks seen, log has {} records ({} acknowledged in all), \
             state had {applied} before catch-up",
            log.len(),
            acked.len()
        );
    }
}
