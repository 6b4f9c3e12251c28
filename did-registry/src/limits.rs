//! Admission limits: per-client-address write rate limits (429) and per-DID anchor limits.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use civitas_core::did::Did;
use civitas_core::problem::RATE_LIMITED;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::error::ApiError;

/// Anchors per second one DID may write.
const ANCHORS_PER_SECOND: u32 = 10;

/// The rate limiters of a node.
#[derive(Debug)]
pub struct Limits {
    writes: DefaultKeyedRateLimiter<IpAddr>,
    anchors: DefaultKeyedRateLimiter<String>,
    per_second: u32,
}

impl Limits {
    /// Writes limited to `per_second` per client address with a burst of twice that;
    /// `None` when `per_second` is 0 (limits off).
    pub fn new(per_second: u32) -> Option<Arc<Self>> {
        let rate = NonZeroU32::new(per_second)?;
        let burst = NonZeroU32::new(per_second.saturating_mul(2)).unwrap_or(rate);
        let anchor_rate = NonZeroU32::new(ANCHORS_PER_SECOND).unwrap_or(rate);
        Some(Arc::new(Self {
            writes: RateLimiter::keyed(Quota::per_second(rate).allow_burst(burst)),
            anchors: RateLimiter::keyed(
                Quota::per_second(anchor_rate)
                    .allow_burst(anchor_rate.saturating_mul(NonZeroU32::MIN.saturating_add(1))),
            ),
            per_second,
        }))
    }

    /// Checks one anchor of `did`.
    pub fn check_anchor(&self, did: &Did) -> Result<(), ApiError> {
        self.anchors.check_key(&did.to_string()).map_err(|_| {
            ApiError::new(
                RATE_LIMITED,
                format!("expected at most {ANCHORS_PER_SECOND} anchors per second from {did}"),
            )
        })
    }
}

/// Middleware: refuses writes over the per-address limit with 429.
pub(crate) async fn limit_writes(
    State(limits): State<Option<Arc<Limits>>>,
    request: Request,
    next: Next,
) -> Response {
    if let Some(limits) = &limits
        && request.method() == Method::POST
    {
        {
            let addr = request
                .extensions()
                .get::<ConnectInfo<SocketAddr>>()
                .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |c| c.0.ip());
            if limits.writes.check_key(&addr).is_err() {
                return ApiError::new(
                    RATE_LIMITED,
                    format!(
                        "expected at most {} writes per second from {addr}",
                        limits.per_second
                    ),
                )
                .into_response();
            }
        }
    }
    next.run(request).await
}
