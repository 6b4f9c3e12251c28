//! The registry client every Civitas part uses.
//!
//! Every answer is checked before it is believed: checkpoints must carry signatures of
//! pinned note keys, be consistent (RFC 9162 consistency proof) with the last checkpoint
//! this client saw, and be no older than the staleness bound; resolutions must carry
//! inclusion and state proofs against such a checkpoint (see `civitas_core::proof`).
//! The caller persists the last checkpoint seen ([`RegistryClient::last_checkpoint`]) and
//! gives it back next time ([`RegistryClient::with_last_checkpoint`]), so a registry that
//! rewrites history is caught across runs.
//!
//! ```no_run
//! # async fn example(pins: civitas_core::proof::PinnedKeys, did: civitas_core::did::Did) -> Result<(), civitas_client::ClientError> {
//! let client = civitas_client::RegistryClient::new("http://127.0.0.1:8080", pins)?;
//! let resolved = client.resolve(&did, &civitas_client::Version::Current).await?;
//! println!("{:?}", resolved.document);
//! # Ok(()) }
//! ```

pub mod credential;
pub mod service;

use std::sync::Mutex;
use std::time::Duration;

use civitas_core::api::{
    Accreditations, ConsistencyProofBody, DidHistory, ResolutionResult, SubmitReceipt, TrustHistory,
};
use civitas_core::did::Did;
use civitas_core::encoding;
use civitas_core::ledger::{Signed, TrustEntry};
use civitas_core::note::{Checkpoint, NoteVerifier};
use civitas_core::problem::Problem;
use civitas_core::proof::{self, PinnedKeys, VerifiedResolution, VerifyError};
use civitas_core::tlog;

/// The default staleness bound: answers whose checkpoint is older are refused.
pub const DEFAULT_STALENESS: Duration = Duration::from_secs(60);

/// How far in the future a checkpoint may be dated (node and client clocks differ).
pub const MAX_CLOCK_SKEW_MS: u64 = 30_000;

/// Why a registry call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The registry could not be reached or answered garbage.
    #[error("registry at {url}: {detail}")]
    Transport {
        /// The URL.
        url: String,
        /// What happened.
        detail: String,
    },
    /// The registry refused the request (RFC 9457 problem).
    #[error("the registry refused: {} ({})", .0.detail, .0.kind)]
    Rejected(Problem),
    /// A DID resolution error (W3C DID Resolution error type).
    #[error("resolution failed: {} ({})", .0.detail, .0.kind)]
    Resolution(Problem),
    /// A proof does not check out.
    #[error("the registry's answer does not verify: {0}")]
    Verify(#[from] VerifyError),
    /// The new checkpoint is not an extension of the last one seen: the log was rewritten.
    #[error(
        "the registry log is not consistent with the last checkpoint seen (size {old_size}): {detail}; the registry may have rewritten its history"
    )]
    Inconsistent {
        /// Size of the last checkpoint seen.
        old_size: u64,
        /// What failed.
        detail: String,
    },
    /// The checkpoint is older than the staleness bound.
    #[error("the registry's checkpoint is {age_ms} ms old, more than the {limit_ms} ms allowed")]
    Stale {
        /// Its age.
        age_ms: u64,
        /// The bound.
        limit_ms: u64,
    },
    /// A bad argument.
    #[error("{0}")]
    Invalid(String),
}

impl ClientError {
    /// The problem `type` URI, for registry refusals and resolution errors.
    pub fn problem_type(&self) -> Option<&str> {
        match self {
            Self::Rejected(p) | Self::Resolution(p) => Some(&p.kind),
            _ => None,
        }
    }
}

/// Which version to resolve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Version {
    /// The version in effect now.
    Current,
    /// A version by its operation id.
    Id(String),
    /// The version in effect at an RFC 3339 time.
    Time(String),
}

struct Seen {
    checkpoint: Checkpoint,
    text: String,
}

/// A client of one registry node.
pub struct RegistryClient {
    http: reqwest::Client,
    base: String,
    pins: PinnedKeys,
    staleness: Duration,
    last: Mutex<Option<Seen>>,
}

impl std::fmt::Debug for RegistryClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryClient")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

fn now_ms() -> u64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    u64::try_from(now.as_millis()).unwrap_or(u64::MAX)
}

/// Fetches the note verifier key a registry announces (`GET /log/key`). Nothing vouches
/// for it: pin it only on first contact, and show its fingerprint to the user.
pub async fn fetch_log_key(base: &str) -> Result<NoteVerifier, ClientError> {
    let url = format!("{}/log/key", base.trim_end_matches('/'));
    let transport = |detail: String| ClientError::Transport {
        url: url.clone(),
        detail,
    };
    let text = reqwest::get(&url)
        .await
        .map_err(|e| transport(e.to_string()))?
        .error_for_status()
        .map_err(|e| transport(e.to_string()))?
        .text()
        .await
        .map_err(|e| transport(e.to_string()))?;
    text.trim()
        .parse()
        .map_err(|e: civitas_core::note::NoteError| {
            transport(format!("not a note verifier key: {e}"))
        })
}

impl RegistryClient {
    /// A client of the registry at `base` (e.g. `http://127.0.0.1:8080`) trusting `pins`.
    pub fn new(base: &str, pins: PinnedKeys) -> Result<Self, ClientError> {
        if pins.verifiers.is_empty() || pins.min_signatures == 0 {
            return Err(ClientError::Invalid(
                "at least one pinned note key and one required signature are needed".to_owned(),
            ));
        }
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| ClientError::Invalid(format!("making the http client: {e}")))?;
        Ok(Self {
            http,
            base: base.trim_end_matches('/').to_owned(),
            pins,
            staleness: DEFAULT_STALENESS,
            last: Mutex::new(None),
        })
    }

    /// Sets the staleness bound.
    #[must_use]
    pub fn with_staleness(mut self, staleness: Duration) -> Self {
        self.staleness = staleness;
        self
    }

    /// Starts from the last checkpoint seen (as returned by
    /// [`last_checkpoint`](Self::last_checkpoint) in an earlier run).
    pub fn with_last_checkpoint(self, text: &str) -> Result<Self, ClientError> {
        let checkpoint = proof::open_checkpoint(text, &self.pins)?;
        if let Ok(mut last) = self.last.lock() {
            *last = Some(Seen {
                checkpoint,
                text: text.to_owned(),
            });
        }
        Ok(self)
    }

    /// The last checkpoint this client accepted, to persist.
    pub fn last_checkpoint(&self) -> Option<String> {
        self.last.lock().ok()?.as_ref().map(|s| s.text.clone())
    }

    /// The registry's base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    async fn get_json<T: serde::de::DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        let url = self.url(path);
        let response = self
            .http
            .get(&url)
            .send()
            .await
            .map_err(|e| ClientError::Transport {
                url: url.clone(),
                detail: e.to_string(),
            })?;
        read_json(&url, response).await
    }

    /// Accepts `checkpoint` if it is fresh and consistent with the last one seen.
    async fn accept(&self, checkpoint: Checkpoint, text: &str) -> Result<(), ClientError> {
        let time = checkpoint.time_ms().ok_or_else(|| {
            ClientError::Verify(VerifyError::Checkpoint("no time extension line".to_owned()))
        })?;
        let now = now_ms();
        if time > now.saturating_add(MAX_CLOCK_SKEW_MS) {
            return Err(ClientError::Verify(VerifyError::Checkpoint(format!(
                "the checkpoint is dated {} ms in the future",
                time - now
            ))));
        }
        let age = now.saturating_sub(time);
        let limit = u64::try_from(self.staleness.as_millis()).unwrap_or(u64::MAX);
        if age > limit {
            return Err(ClientError::Stale {
                age_ms: age,
                limit_ms: limit,
            });
        }
        let old = self
            .last
            .lock()
            .ok()
            .and_then(|l| l.as_ref().map(|s| s.checkpoint.clone()));
        if let Some(old) = old {
            self.check_consistency(&old, &checkpoint).await?;
            if old.size() > checkpoint.size() {
                // An older (but consistent) answer: keep the newer one we have.
                return Ok(());
            }
        }
        if let Ok(mut last) = self.last.lock() {
            *last = Some(Seen {
                checkpoint,
                text: text.to_owned(),
            });
        }
        Ok(())
    }

    /// Checks that `new` extends `old` (or `old` extends `new`).
    pub async fn check_consistency(
        &self,
        old: &Checkpoint,
        new: &Checkpoint,
    ) -> Result<(), ClientError> {
        let inconsistent = |detail: String| ClientError::Inconsistent {
            old_size: old.size(),
            detail,
        };
        if old.origin() != new.origin() {
            return Err(inconsistent(format!(
                "origin changed from {:?} to {:?}",
                old.origin(),
                new.origin()
            )));
        }
        let (small, large) = if old.size() <= new.size() {
            (old, new)
        } else {
            (new, old)
        };
        if small.size() == large.size() {
            return if small.root() == large.root() {
                Ok(())
            } else {
                Err(inconsistent(
                    "two different roots for the same size".to_owned(),
                ))
            };
        }
        if small.size() == 0 {
            return Ok(());
        }
        let body: ConsistencyProofBody = match self
            .get_json(&format!(
                "/log/proof/consistency?from={}&to={}",
                small.size(),
                large.size()
            ))
            .await
        {
            Ok(body) => body,
            // A log never shrinks: a registry that cannot prove its tree of the larger size
            // extends the smaller one no longer has the history it signed.
            Err(ClientError::Rejected(problem)) => {
                return Err(inconsistent(format!(
                    "the registry cannot prove consistency from size {} to {}: {}",
                    small.size(),
                    large.size(),
                    problem.detail
                )));
            }
            Err(other) => return Err(other),
        };
        let path = body
            .proof
            .iter()
            .map(|h| encoding::b64_hash(h))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| inconsistent(e.to_string()))?;
        tlog::verify_consistency(
            small.size(),
            large.size(),
            small.root(),
            large.root(),
            &path,
        )
        .map_err(|e| inconsistent(e.to_string()))
    }

    /// The registry's current checkpoint, checked and accepted.
    pub async fn checkpoint(&self) -> Result<Checkpoint, ClientError> {
        self.current_checkpoint()
            .await
            .map(|(checkpoint, _)| checkpoint)
    }

    /// The current checkpoint, checked and accepted, with its signed text.
    async fn current_checkpoint(&self) -> Result<(Checkpoint, String), ClientError> {
        let url = self.url("/checkpoint");
        let transport = |e: reqwest::Error| ClientError::Transport {
            url: url.clone(),
            detail: e.to_string(),
        };
        let text = self
            .http
            .get(&url)
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(transport)?
            .text()
            .await
            .map_err(transport)?;
        let checkpoint = proof::open_checkpoint(&text, &self.pins)?;
        self.accept(checkpoint.clone(), &text).await?;
        Ok((checkpoint, text))
    }

    /// A receipt for the entry `bytes` at log `index`, as `submit` would have returned it:
    /// for an entry whose receipt was lost (a crash after submitting), proven against the
    /// registry's current checkpoint.
    pub async fn receipt_for(
        &self,
        index: u64,
        bytes: &[u8],
    ) -> Result<SubmitReceipt, ClientError> {
        let (checkpoint, text) = self.current_checkpoint().await?;
        let body: civitas_core::api::InclusionProofBody = self
            .get_json(&format!(
                "/log/proof/inclusion?index={index}&size={}",
                checkpoint.size()
            ))
            .await?;
        let leaf = tlog::leaf_hash(bytes);
        let path = body
            .proof
            .iter()
            .map(|h| encoding::b64_hash(h))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| ClientError::Transport {
                url: self.url("/log/proof/inclusion"),
                detail: format!("inclusion proof: {e}"),
            })?;
        tlog::verify_inclusion(&leaf, index, checkpoint.size(), &path, checkpoint.root()).map_err(
            |e| {
                ClientError::Verify(VerifyError::Inclusion {
                    what: "entry",
                    detail: e.to_string(),
                })
            },
        )?;
        Ok(SubmitReceipt {
            id: civitas_core::ledger::ObjectId::of(bytes),
            did: None,
            index,
            leaf_hash: encoding::b64(&leaf),
            checkpoint: text,
            inclusion: body.proof,
            nullified: Vec::new(),
        })
    }

    /// Resolves a DID with every proof checked. did:key and did:jwk are resolved locally.
    pub async fn resolve(&self, did: &Did, version: &Version) -> Result<VerifiedDid, ClientError> {
        if did.method() != civitas_core::did::Method::Civ {
            let document = civitas_core::resolve::resolve_key_did(did).map_err(|e| {
                ClientError::Resolution(Problem {
                    kind: e.type_uri().to_owned(),
                    title: String::new(),
                    status: e.status(),
                    detail: e.to_string(),
                })
            })?;
            return Ok(VerifiedDid {
                document,
                ledger: None,
            });
        }
        let mut path = format!("/1.0/identifiers/{did}");
        match version {
            Version::Current => {}
            Version::Id(id) => path.push_str(&format!("?versionId={}", query_escape(id))),
            Version::Time(time) => path.push_str(&format!("?versionTime={}", query_escape(time))),
        }
        let url = self.url(&path);
        let response = self
            .http
            .get(&url)
            .send()
            .await
            .map_err(|e| ClientError::Transport {
                url: url.clone(),
                detail: e.to_string(),
            })?;
        let bytes = response.bytes().await.map_err(|e| ClientError::Transport {
            url: url.clone(),
            detail: e.to_string(),
        })?;
        let result: ResolutionResult =
            serde_json::from_slice(&bytes).map_err(|e| ClientError::Transport {
                url: url.clone(),
                detail: format!("not a DID resolution result: {e}"),
            })?;
        if let Some(error) = result.did_resolution_metadata.error {
            return Err(ClientError::Resolution(error));
        }
        let verified =
            proof::verify_resolution(did, &result, &self.pins, *version == Version::Current)?;
        self.accept(verified.checkpoint.clone(), &verified.checkpoint_text)
            .await?;
        Ok(VerifiedDid {
            document: verified.document.clone(),
            ledger: Some(LedgerVersion {
                verified,
                metadata: result.did_document_metadata,
            }),
        })
    }

    /// The operations of a DID, canonical and nullified (informational: each resolution
    /// of a version is what carries proofs).
    pub async fn history(&self, did: &Did) -> Result<DidHistory, ClientError> {
        self.get_json(&format!("/history/{did}")).await
    }

    /// The entries of one (issuer, vct), oldest first (informational; used to chain `prev`).
    pub async fn trust_history(
        &self,
        issuer: &Did,
        vct: &str,
    ) -> Result<TrustHistory, ClientError> {
        self.get_json(&format!(
            "/trust/history?issuer={}&vct={}",
            query_escape(issuer.as_str()),
            query_escape(vct)
        ))
        .await
    }

    /// The latest anchor of `stream`, or `None` when the stream has none yet.
    pub async fn anchor_head(
        &self,
        stream: &str,
    ) -> Result<Option<civitas_core::api::AnchorHead>, ClientError> {
        match self
            .get_json(&format!("/anchors/head?stream={}", query_escape(stream)))
            .await
        {
            Ok(head) => Ok(Some(head)),
            Err(ClientError::Rejected(p)) if p.status == 404 => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Submits a signed ledger object to `POST {path}` and checks the receipt: a
    /// checkpoint signed by pinned keys whose tree includes exactly these bytes.
    pub async fn submit(&self, path: &str, bytes: &[u8]) -> Result<SubmitReceipt, ClientError> {
        let url = self.url(path);
        let response = self
            .http
            .post(&url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(bytes.to_vec())
            .send()
            .await
            .map_err(|e| ClientError::Transport {
                url: url.clone(),
                detail: e.to_string(),
            })?;
        let receipt: SubmitReceipt = read_json(&url, response).await?;
        let checkpoint = proof::open_checkpoint(&receipt.checkpoint, &self.pins)?;
        let path_hashes = receipt
            .inclusion
            .iter()
            .map(|h| encoding::b64_hash(h))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| VerifyError::Inclusion {
                what: "the submitted entry",
                detail: e.to_string(),
            })?;
        tlog::verify_inclusion(
            &tlog::leaf_hash(bytes),
            receipt.index,
            checkpoint.size(),
            &path_hashes,
            checkpoint.root(),
        )
        .map_err(|e| VerifyError::Inclusion {
            what: "the submitted entry",
            detail: e.to_string(),
        })?;
        self.accept(checkpoint, &receipt.checkpoint.clone()).await?;
        Ok(receipt)
    }

    /// Submits a DID operation.
    pub async fn submit_operation<T: civitas_core::ledger::Body>(
        &self,
        signed: &Signed<T>,
    ) -> Result<SubmitReceipt, ClientError> {
        let path = match T::TYPE {
            "civ.op.v1" => "/operations",
            "civ.trust.v1" => "/trust",
            "civ.anchor.v1" => "/anchors",
            other => {
                return Err(ClientError::Invalid(format!(
                    "{other} entries are not submitted by clients"
                )));
            }
        };
        self.submit(path, signed.bytes()).await
    }

    /// The accreditations for `vct` (at an RFC 3339 time, when given), each checked.
    pub async fn accreditations(
        &self,
        vct: &str,
        at: Option<&str>,
    ) -> Result<Vec<Signed<TrustEntry>>, ClientError> {
        let mut path = format!("/trust/issuers?vct={}", query_escape(vct));
        if let Some(at) = at {
            path.push_str(&format!("&at={}", query_escape(at)));
        }
        let body: Accreditations = self.get_json(&path).await?;
        let checkpoint = proof::open_checkpoint(&body.checkpoint, &self.pins)?;
        let seal = proof::verify_seal(&body.seal, &checkpoint)?;
        let mut out = Vec::new();
        for item in &body.issuers {
            out.push(proof::verify_accreditation(
                item,
                &checkpoint,
                seal.body(),
                at.is_none(),
            )?);
        }
        self.accept(checkpoint, &body.checkpoint).await?;
        Ok(out)
    }
}

fn query_escape(text: &str) -> String {
    percent_encoding::utf8_percent_encode(text, percent_encoding::NON_ALPHANUMERIC).to_string()
}

async fn read_json<T: serde::de::DeserializeOwned>(
    url: &str,
    response: reqwest::Response,
) -> Result<T, ClientError> {
    let status = response.status();
    let bytes = response.bytes().await.map_err(|e| ClientError::Transport {
        url: url.to_owned(),
        detail: e.to_string(),
    })?;
    if !status.is_success() {
        return Err(match serde_json::from_slice::<Problem>(&bytes) {
            Ok(problem) => ClientError::Rejected(problem),
            Err(_) => ClientError::Transport {
                url: url.to_owned(),
                detail: format!(
                    "http {status}: {}",
                    String::from_utf8_lossy(&bytes)
                        .chars()
                        .take(200)
                        .collect::<String>()
                ),
            },
        });
    }
    serde_json::from_slice(&bytes).map_err(|e| ClientError::Transport {
        url: url.to_owned(),
        detail: format!("unexpected answer: {e}"),
    })
}

/// A resolved DID: its document, and for did:civ the verified ledger version.
#[derive(Debug, Clone)]
pub struct VerifiedDid {
    /// The document.
    pub document: civitas_core::document::DidDocument,
    /// For did:civ: the verified operation and its metadata.
    pub ledger: Option<LedgerVersion>,
}

/// A did:civ version with its proofs checked.
#[derive(Debug, Clone)]
pub struct LedgerVersion {
    /// The verified parts.
    pub verified: VerifiedResolution,
    /// The document metadata as served (times, next version).
    pub metadata: civitas_core::api::DocumentMetadata,
}
