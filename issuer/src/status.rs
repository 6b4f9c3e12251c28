//! Status lists: 2-bit IETF Token Status Lists of [`LIST_LEN`] entries, one version
//! published on every tick of the cadence and at once after a change, every version kept
//! and its SHA-256 anchored on the ledger in the stream `<issuer DID>/status-<list>`.

use std::sync::Arc;
use std::time::Duration;

use civitas_core::encoding;
use civitas_core::ledger::{Anchor, AnchorKind, Digest, Signed};
use civitas_core::status_list::{
    STATUS_LIST_TYP, StatusList, StatusListClaim, StatusListTokenPayload,
};
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;

use crate::AppState;
use crate::store::{
    Command, Event, ListVersion, StorageError, View, anchor_key, head_key, list_key, version_key,
};

/// Entries per status list (2^17, as DESIGN.md asks: large enough to hide each credential).
pub const LIST_LEN: u32 = 1 << 17;
/// Bits per entry.
pub const BITS: u8 = 2;
/// A list takes new credentials until this many of its indices are reserved, so that a
/// random index is free at the first or second try.
pub const LIST_FILL: u32 = LIST_LEN / 2;
/// Anchoring after a change waits this long, so that a burst of changes is anchored in one
/// round.
const MIN_PUBLISH_GAP: Duration = Duration::from_millis(500);

/// A status list number, from 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ListId(pub u32);

/// A credential's status (the 2-bit values of the Token Status List).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StatusCode {
    /// 0x00.
    Valid,
    /// 0x01 (INVALID: revoked for good).
    Revoked,
    /// 0x02 (SUSPENDED: may return to valid).
    Suspended,
}

impl StatusCode {
    /// The 2-bit value in the list.
    pub(crate) fn bits(self) -> u8 {
        match self {
            Self::Valid => 0,
            Self::Revoked => 1,
            Self::Suspended => 2,
        }
    }
}

/// A list as stored (its bytes), or a fresh one with every entry valid.
pub(crate) fn load_list(bytes: Option<Vec<u8>>) -> Result<StatusList, StorageError> {
    match bytes {
        Some(bytes) => StatusList::from_bytes(BITS, bytes),
        None => StatusList::new(BITS, LIST_LEN as usize),
    }
    .map_err(|e| StorageError::Damaged {
        what: "status list",
        detail: e.to_string(),
    })
}

/// The URI of a list (the token's `sub` and the credentials' `status.status_list.uri`).
pub(crate) fn list_uri(public_url: &str, list: ListId) -> String {
    format!("{}/status/{}", public_url.trim_end_matches('/'), list.0)
}

/// The anchor stream of a list.
pub(crate) fn stream_name(did: &str, list: ListId) -> String {
    format!("{did}/status-{}", list.0)
}

/// Signs a list version: from the list's bytes and `iat` to the compact JWS.
type SignVersion = Box<dyn FnOnce(&StatusList, i64) -> Option<String> + Send>;

/// Writes the next version of a list.
struct Publish {
    list: ListId,
    jws_for: SignVersion,
    iat: i64,
}

impl Command for Publish {
    type Output = Result<ListVersion, StorageError>;

    fn decide(
        self: Box<Self>,
        view: &View<'_>,
    ) -> Result<(Option<Event>, Self::Output), Self::Output> {
        let list = load_list(view.get(&list_key(self.list)).map_err(Err)?).map_err(Err)?;
        let head = view
            .get_u64(&head_key(self.list))
            .map_err(Err)?
            .unwrap_or(0);
        let version = ListVersion {
            list: self.list,
            version: head + 1,
            iat: self.iat,
            jws: (self.jws_for)(&list, self.iat).ok_or_else(|| {
                Err(StorageError::Damaged {
                    what: "status list",
                    detail: format!("list {} could not be signed", self.list.0),
                })
            })?,
        };
        Ok((
            Some(Event::ListPublished {
                version: version.clone(),
            }),
            Ok(version),
        ))
    }
}

/// Records an anchor.
struct Anchored {
    list: ListId,
    version: u64,
    anchor: String,
    seq: u64,
}

impl Command for Anchored {
    type Output = ();

    fn decide(self: Box<Self>, _view: &View<'_>) -> Result<(Option<Event>, ()), ()> {
        Ok((
            Some(Event::ListAnchored {
                list: self.list,
                version: self.version,
                anchor: self.anchor,
                seq: self.seq,
            }),
            (),
        ))
    }
}

/// Signals the publisher that a list changed.
#[derive(Debug, Default)]
pub struct Changes {
    notify: Notify,
}

impl Changes {
    /// Wakes the publisher.
    pub fn changed(&self) {
        self.notify.notify_one();
    }
}

/// The lists in use: 1 up to the current one.
pub(crate) async fn lists(app: &AppState) -> Result<Vec<ListId>, StorageError> {
    let current = app.store.highest_list();
    Ok((1..=current).map(ListId).collect())
}

/// Publishes every list now.
pub(crate) async fn publish_all(app: &AppState) -> Result<(), StorageError> {
    for list in lists(app).await? {
        publish(app, list).await?;
    }
    Ok(())
}

/// Publishes a new version of `list` now (anchored by the publisher's next round).
pub(crate) async fn publish(app: &AppState, list: ListId) -> Result<ListVersion, StorageError> {
    let iat = crate::now_s();
    let key = app.key.clone();
    let kid = app.kid.clone();
    let sub = list_uri(&app.public_url, list);
    let ttl = app.status_interval.as_secs().max(1);
    let command = Publish {
        list,
        iat,
        jws_for: Box::new(move |list, iat| {
            let lst = list.encode();
            let payload = StatusListTokenPayload {
                iss: None,
                sub,
                iat,
                exp: Some(iat.saturating_add(i64::try_from(2 * ttl).unwrap_or(i64::MAX))),
                ttl: Some(ttl),
                status_list: StatusListClaim {
                    bits: BITS,
                    lst,
                    aggregation_uri: None,
                },
            };
            let mut header = serde_json::Map::new();
            header.insert("alg".to_owned(), "EdDSA".into());
            header.insert("typ".to_owned(), STATUS_LIST_TYP.into());
            header.insert("kid".to_owned(), kid.to_string().into());
            let serde_json::Value::Object(payload) = serde_json::to_value(&payload).ok()? else {
                return None;
            };
            civitas_core::jws::sign_compact(&header, &payload, &key).ok()
        }),
    };
    app.store.run(command).await?
}

/// Anchors every published version not anchored yet, oldest first.
pub(crate) async fn anchor_pending(app: &AppState) -> anyhow::Result<()> {
    for list in lists(app).await? {
        let head = app
            .store
            .get(&head_key(list))?
            .and_then(|b| <[u8; 8]>::try_from(b.as_slice()).ok())
            .map(u64::from_be_bytes)
            .unwrap_or(0);
        let last: Option<(u64, String, u64)> = app.store.get_json(&anchor_key(list), "anchor")?;
        let done = last.as_ref().map_or(0, |(_, _, version)| *version);
        if done >= head {
            continue;
        }
        // The ledger says where the stream stands: after a crash between submitting an
        // anchor and recording it, it is ahead of our record (that version is anchored twice,
        // which is harmless).
        let stream = stream_name(app.did.as_str(), list);
        let (mut seq, mut prev) = match app.registry.anchor_head(&stream).await? {
            Some(h) => (h.seq, Some(h.id)),
            None => (0, None),
        };
        for version in done + 1..=head {
            let Some(v): Option<ListVersion> = app
                .store
                .get_json(&version_key(list, version), "list version")?
            else {
                continue;
            };
            let anchor = Anchor {
                kind: AnchorKind::StatusList,
                stream: stream.clone(),
                seq: seq + 1,
                prev,
                root: Digest(encoding::sha256(v.jws.as_bytes())),
                first: None,
                last: None,
                signer: app.kid.clone(),
            };
            let signed = Signed::sign(anchor, &app.key);
            app.registry.submit_operation(&signed).await?;
            let id = signed.id();
            app.store
                .run(Anchored {
                    list,
                    version,
                    anchor: id.to_string(),
                    seq: seq + 1,
                })
                .await?;
            seq += 1;
            prev = Some(id);
        }
    }
    Ok(())
}

/// Runs the publisher: a version of every list each `interval`; anchors every version not
/// anchored yet after each round and soon after a change (a change publishes its version
/// itself). An anchoring failure is retried on the next round.
pub(crate) async fn publisher(app: AppState, changes: Arc<Changes>) {
    loop {
        if let Err(e) = publish_all(&app).await {
            tracing::error!(error = %e, "publishing status lists failed");
        }
        anchor_logged(&app).await;
        let next_round = tokio::time::sleep(app.status_interval);
        tokio::pin!(next_round);
        loop {
            tokio::select! {
                () = &mut next_round => break,
                () = changes.notify.notified() => {
                    tokio::time::sleep(MIN_PUBLISH_GAP).await;
                    anchor_logged(&app).await;
                }
            }
        }
    }
}

async fn anchor_logged(app: &AppState) {
    if let Err(e) = anchor_pending(app).await {
        tracing::warn!(error = %e, "anchoring status list versions failed; retrying later");
    }
}

/// The version of `list` in effect at `time` (unix seconds), or the latest.
pub(crate) async fn version_at(
    app: &AppState,
    list: ListId,
    time: Option<i64>,
) -> Result<Option<ListVersion>, StorageError> {
    let prefix = {
        let mut p = version_key(list, 0);
        p.truncate(p.len() - 8);
        p
    };
    for item in app.store.scan(&prefix).await?.rev() {
        let (_, value) = item?;
        let v: ListVersion = serde_json::from_slice(&value).map_err(|e| StorageError::Damaged {
            what: "list version",
            detail: e.to_string(),
        })?;
        if time.is_none_or(|t| v.iat <= t) {
            return Ok(Some(v));
        }
    }
    Ok(None)
}
