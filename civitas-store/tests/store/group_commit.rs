//! Group commit under many concurrent tasks.

use std::collections::BTreeMap;
use std::sync::Arc;

use civitas_store::{GroupCommitLog, Log};

const TASKS: u64 = 64;
const APPENDS_PER_TASK: u64 = 50;

fn record(task: u64, seq: u64) -> Vec<u8> {
    format!("task {task} append {seq}").into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_appends_share_fdatasyncs() {
    let dir = tempfile::tempdir().unwrap();
    let log = Arc::new(GroupCommitLog::new(Log::open(dir.path()).unwrap()).unwrap());
    let tasks: Vec<_> = (0..TASKS)
        .map(|task| {
            let log = Arc::clone(&log);
            tokio::spawn(async move {
                let mut acked = Vec::new();
                for seq in 0..APPENDS_PER_TASK {
                    // Every fifth append is a batch of three, like a block.
                    let records: Vec<Vec<u8>> = if seq % 5 == 4 {
                        (0..3).map(|k| record(task, seq * 10 + k)).collect()
                    } else {
                        vec![record(task, seq * 10)]
                    };
                    let first = if records.len() == 1 {
                        log.append(records[0].clone()).await.unwrap()
                    } else {
                        log.append_batch(records.clone()).await.unwrap()
                    };
                    // Acknowledged means readable, right away.
                    let end = first + records.len() as u64;
                    assert_eq!(log.read_range(first, end).unwrap(), records);
                    acked.extend((first..).zip(records));
                }
                acked
            })
        })
        .collect();
    let mut acked = BTreeMap::new();
    for task in tasks {
        for (index, record) in task.await.unwrap() {
            assert!(
                acked.insert(index, record).is_none(),
                "index {index} acknowledged twice"
            );
        }
    }
    let records = acked.len() as u64;
    assert_eq!(
        records,
        TASKS * (APPENDS_PER_TASK + 2 * APPENDS_PER_TASK / 5)
    );
    // Unique and dense.
    assert_eq!(
        acked.keys().copied().collect::<Vec<_>>(),
        (0..records).collect::<Vec<_>>()
    );
    assert_eq!(log.len(), records);
    let appends = TASKS * APPENDS_PER_TASK;
    let fsyncs = log.fsync_count();
    println!(
        "group commit: {appends} appends ({records} records) from {TASKS} tasks, {fsyncs} \
         fdatasyncs ({:.1} appends per fdatasync)",
        appends as f64 / fsyncs as f64
    );
    assert!(
        fsyncs * 4 <= appends,
        "{fsyncs} fdatasyncs for {appends} appends"
    );

    let log = Arc::into_inner(log).unwrap();
    log.close().await.unwrap();
    let log = Log::open(dir.path()).unwrap();
    for (index, record) in acked {
        assert_eq!(
            log.read(index).unwrap(),
            record,
            "record {index} after reopen"
        );
    }
}
