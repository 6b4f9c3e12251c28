//! `GET /healthz` and `GET /metrics` (Prometheus text format).

use std::fmt::Write as _;
use std::sync::atomic::Ordering;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;

use crate::AppState;

pub(crate) fn routes() -> axum::Router<AppState> {
    axum::Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
}

async fn healthz(State(app): State<AppState>) -> impl IntoResponse {
    if app.ledger.is_healthy() {
        (StatusCode::OK, "ok\n")
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "storage failure: writes stopped\n",
        )
    }
}

async fn metrics(State(app): State<AppState>) -> impl IntoResponse {
    let ledger = &app.ledger;
    let (size, time) = {
        let head = ledger.head().await;
        (head.size(), head.time_ms())
    };
    let m = &ledger.metrics;
    let mut out = String::new();
    let mut metric = |name: &str, kind: &str, help: &str, value: u64| {
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
        );
    };
    metric(
        "civitas_registry_log_size",
        "gauge",
        "Leaves in the log (tree size of the checkpoint).",
        size,
    );
    metric(
        "civitas_registry_seal_time_ms",
        "gauge",
        "Ledger time of the last seal, unix ms.",
        time,
    );
    metric(
        "civitas_registry_entries_accepted_total",
        "counter",
        "Entries accepted since start.",
        m.accepted.load(Ordering::Relaxed),
    );
    metric(
        "civitas_registry_entries_refused_total",
        "counter",
        "Entries refused by the ledger rules since start.",
        m.refused.load(Ordering::Relaxed),
    );
    metric(
        "civitas_registry_blocks_total",
        "counter",
        "Blocks sealed since start.",
        m.blocks.load(Ordering::Relaxed),
    );
    metric(
        "civitas_registry_fsyncs_total",
        "counter",
        "fdatasync calls on the log since start.",
        ledger.fsync_count(),
    );
    metric(
        "civitas_registry_healthy",
        "gauge",
        "1 while the write path works.",
        u64::from(ledger.is_healthy()),
    );
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out)
}
