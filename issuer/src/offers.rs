//! Offers and their codes: the state transitions the writer decides (create, redeem a code,
//! use a token, change a status), and the secrets they involve. Codes, tx codes and tokens
//! are stored only as hashes and never logged.

use civitas_core::encoding;
use rand::RngCore as _;
use serde_json::json;

use crate::error::{OAuthCode, OAuthError};
use crate::status::StatusCode;
use crate::store::{
    Command, Event, IssuedCredential, Offer, OfferState, StorageError, View, code_key,
    credential_key, offer_key,
};

/// Wrong tx codes after which an offer's code dies.
pub const MAX_TX_CODE_FAILURES: u8 = 5;
/// The longest an offer's code lives.
pub const MAX_OFFER_LIFETIME_MS: u64 = 10 * 60 * 1000;
/// Digits of a tx code.
pub const TX_CODE_DIGITS: usize = 6;

/// `bytes` random bytes, base64url.
pub fn random_token(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rngs::OsRng.fill_bytes(&mut buf);
    encoding::b64url(&buf)
}

/// An access token: `<offer id>.<secret>`. The offer id finds the offer, so no index of
/// tokens is kept; the hash of the whole token, in the offer's `Redeemed` state, proves it.
pub fn access_token(offer_id: &str, secret: &str) -> String {
    format!("{offer_id}.{secret}")
}

/// A numeric tx code.
pub fn random_tx_code() -> String {
    let mut out = String::with_capacity(TX_CODE_DIGITS);
    while out.len() < TX_CODE_DIGITS {
        // Rejection sampling keeps the digits uniform.
        let b = (rand::rngs::OsRng.next_u32() & 0xff) as u8;
        if b < 250 {
            out.push(char::from(b'0' + b % 10));
        }
    }
    out
}

/// Base64url SHA-256 of a secret: what is stored in its place.
pub fn hash_secret(secret: &str) -> String {
    encoding::b64url(&encoding::sha256(secret.as_bytes()))
}

/// The stored form of an offer's tx code (bound to the offer, so equal codes differ).
pub fn hash_tx_code(offer_id: &str, tx_code: &str) -> String {
    hash_secret(&format!("{offer_id}\n{tx_code}"))
}

/// Constant-time equality of two hashes.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// The `openid-credential-offer://` URI of an offer.
pub fn offer_uri(
    issuer: &str,
    config_id: &str,
    code: &str,
    tx_code: bool,
    description: &str,
) -> String {
    let mut grant = json!({ "pre-authorized_code": code });
    if tx_code {
        grant["tx_code"] = json!({
            "input_mode": "numeric",
            "length": TX_CODE_DIGITS,
            "description": description,
        });
    }
    let offer = json!({
        "credential_issuer": issuer,
        "credential_configuration_ids": [config_id],
        "grants": { crate::oid4vci::PRE_AUTHORIZED_GRANT: grant },
    });
    format!(
        "openid-credential-offer://?credential_offer={}",
        percent_encoding::utf8_percent_encode(
            &offer.to_string(),
            percent_encoding::NON_ALPHANUMERIC
        )
    )
}

/// Stores a new offer.
pub(crate) struct CreateOffer(pub(crate) Offer);

impl Command for CreateOffer {
    type Output = Result<(), StorageError>;

    fn decide(
        self: Box<Self>,
        view: &View<'_>,
    ) -> Result<(Option<Event>, Self::Output), Self::Output> {
        // Codes are 256-bit random: a collision means a broken random source.
        if view
            .get(&code_key(&self.0.code_hash))
            .map_err(Err)?
            .is_some()
            || view.get(&offer_key(&self.0.id)).map_err(Err)?.is_some()
        {
            return Err(Err(StorageError::Damaged {
                what: "offer",
                detail: "a fresh random code or id collides with a stored one".to_owned(),
            }));
        }
        Ok((Some(Event::OfferCreated { offer: self.0 }), Ok(())))
    }
}

/// What redeeming a code gives.
#[derive(Debug)]
pub struct Redeemed {
    /// The offer.
    pub offer: String,
    /// Its credential configuration.
    pub config_id: String,
}

/// Exchanges a pre-authorized code (and tx code) for an access token
/// ([`access_token`] of the offer and `token_secret`).
pub(crate) struct RedeemCode {
    pub(crate) code_hash: String,
    pub(crate) tx_code: Option<String>,
    pub(crate) token_secret: String,
    pub(crate) token_expires_ms: u64,
    pub(crate) now_ms: u64,
}

fn grant_error(description: impl Into<String>) -> OAuthError {
    OAuthError::new(OAuthCode::InvalidGrant, description)
}

impl Command for RedeemCode {
    type Output = Result<Redeemed, OAuthError>;

    fn decide(
        self: Box<Self>,
        view: &View<'_>,
    ) -> Result<(Option<Event>, Self::Output), Self::Output> {
        let id = view
            .get(&code_key(&self.code_hash))
            .map_err(|e| Err(e.into()))?
            .ok_or_else(|| Err(grant_error("unknown pre-authorized code")))?;
        let id = String::from_utf8(id)
            .map_err(|_| Err(OAuthError::internal("a stored offer id is not utf-8")))?;
        let offer: Offer = view
            .get_json(&offer_key(&id), "offer")
            .map_err(|e| Err(e.into()))?
            .ok_or_else(|| Err(OAuthError::internal("a code names a missing offer")))?;
        let failures = match offer.state {
            OfferState::Open { failures } => failures,
            OfferState::Locked => {
                return Err(Err(grant_error(format!(
                    "the pre-authorized code is locked after {MAX_TX_CODE_FAILURES} wrong tx codes"
                ))));
            }
            OfferState::Redeemed { .. } | OfferState::Issued { .. } => {
                return Err(Err(grant_error("the pre-authorized code was already used")));
            }
        };
        if self.now_ms >= offer.expires_ms {
            return Err(Err(grant_error("the pre-authorized code has expired")));
        }
        match (&offer.tx_code_hash, &self.tx_code) {
            (Some(_), None) => {
                return Err(Err(OAuthError::new(
                    OAuthCode::InvalidRequest,
                    "this offer requires a tx_code",
                )));
            }
            (None, Some(_)) => {
                return Err(Err(OAuthError::new(
                    OAuthCode::InvalidRequest,
                    "this offer has no tx_code; send none",
                )));
            }
            (Some(expected), Some(given)) if !same(expected, &hash_tx_code(&id, given)) => {
                let left = MAX_TX_CODE_FAILURES.saturating_sub(failures + 1);
                let description = if left == 0 {
                    "wrong tx_code; the pre-authorized code is now locked".to_owned()
                } else {
                    format!("wrong tx_code; {left} attempts left")
                };
                return Ok((
                    Some(Event::TxCodeFailed {
                        offer: id,
                        failures: Some(failures + 1),
                    }),
                    Err(grant_error(description)),
                ));
            }
            _ => {}
        }
        Ok((
            Some(Event::CodeRedeemed {
                token_hash: hash_secret(&access_token(&id, &self.token_secret)),
                offer: id.clone(),
                token_expires_ms: self.token_expires_ms,
            }),
            Ok(Redeemed {
                offer: id,
                config_id: offer.config_id,
            }),
        ))
    }
}

/// The offer behind a live access token, and its stored form (read outside the writer;
/// [`UseToken`] decides).
pub(crate) fn offer_for_token(
    store: &crate::store::Store,
    token: &str,
    now_ms: u64,
) -> Result<(Offer, Vec<u8>), OAuthError> {
    let invalid = || {
        OAuthError::new(
            OAuthCode::InvalidToken,
            "unknown, used or expired access token",
        )
    };
    let (id, _) = token.split_once('.').ok_or_else(invalid)?;
    let stored = store.get(&offer_key(id))?.ok_or_else(invalid)?;
    let offer: Offer = crate::store::decode(&stored, "offer")?;
    match &offer.state {
        OfferState::Redeemed {
            token_hash,
            token_expires_ms,
        } if same(token_hash, &hash_secret(token)) && now_ms < *token_expires_ms => {
            Ok((offer, stored))
        }
        _ => Err(invalid()),
    }
}

/// Records issued credentials and uses up the token, unless someone used it first.
pub(crate) struct UseToken {
    /// The offer as read with the token, `Redeemed` with its hash (it becomes `Issued`,
    /// without its claims).
    pub(crate) offer: Offer,
    /// The offer's stored form as read with the token.
    pub(crate) read: Vec<u8>,
    pub(crate) credentials: Vec<IssuedCredential>,
}

impl Command for UseToken {
    type Output = Result<(), OAuthError>;

    fn decide(
        self: Box<Self>,
        view: &View<'_>,
    ) -> Result<(Option<Event>, Self::Output), Self::Output> {
        // The token was live when the offer was read; any change to the offer since (its
        // credentials issued by a concurrent request) changes its stored form.
        let unchanged = view
            .holds(&offer_key(&self.offer.id), &self.read)
            .map_err(|e| Err(e.into()))?;
        if !unchanged {
            return Err(Err(OAuthError::new(
                OAuthCode::InvalidToken,
                "the access token was used by a concurrent request",
            )));
        }
        let mut offer = self.offer;
        let OfferState::Redeemed { token_hash, .. } = offer.state else {
            return Err(Err(OAuthError::internal(
                "a token was used with an offer not read as redeemed",
            )));
        };
        offer.claims.clear();
        offer.state = OfferState::Issued {
            credentials: self.credentials.iter().map(|c| c.id.clone()).collect(),
        };
        Ok((
            Some(Event::Issued {
                offer,
                token_hash,
                credentials: self.credentials,
            }),
            Ok(()),
        ))
    }
}

/// Why a status change is refused.
#[derive(Debug, thiserror::Error)]
pub enum StatusChangeError {
    /// No such credential.
    #[error("no credential {0} was issued here")]
    Unknown(String),
    /// Revocation is final.
    #[error("credential {0} is revoked; revocation is final")]
    Final(String),
    /// Storage failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// Changes a credential's status.
pub(crate) struct SetStatus {
    pub(crate) credential: String,
    pub(crate) status: StatusCode,
    pub(crate) by: String,
    pub(crate) at_ms: u64,
}

impl Command for SetStatus {
    type Output = Result<IssuedCredential, StatusChangeError>;

    fn decide(
        self: Box<Self>,
        view: &View<'_>,
    ) -> Result<(Option<Event>, Self::Output), Self::Output> {
        let mut c: IssuedCredential = view
            .get_json(&credential_key(&self.credential), "credential")
            .map_err(|e| Err(e.into()))?
            .ok_or_else(|| Err(StatusChangeError::Unknown(self.credential.clone())))?;
        if c.status == StatusCode::Revoked {
            return Err(Err(StatusChangeError::Final(self.credential)));
        }
        if c.status == self.status {
            return Err(Ok(c));
        }
        c.status = self.status;
        Ok((
            Some(Event::StatusChanged {
                credential: self.credential,
                status: self.status,
                by: self.by,
                at_ms: self.at_ms,
            }),
            Ok(c),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::ListId;
    use crate::store::Store;

    fn offer(id: &str, code: &str, tx_code: Option<&str>) -> Offer {
        Offer {
            id: id.to_owned(),
            code_hash: hash_secret(code),
            config_id: "ResidentIdentity".to_owned(),
            claims: serde_json::Map::new(),
            holder: None,
            tx_code_hash: tx_code.map(|t| hash_tx_code(id, t)),
            created_by: "did:example:op".to_owned(),
            created_ms: 0,
            expires_ms: 1_000_000,
            valid_for_s: 60,
            state: OfferState::Open { failures: 0 },
        }
    }

    fn redeem(code: &str, tx_code: Option<&str>, token_secret: &str) -> RedeemCode {
        RedeemCode {
            code_hash: hash_secret(code),
            tx_code: tx_code.map(str::to_owned),
            token_secret: token_secret.to_owned(),
            token_expires_ms: 2_000_000,
            now_ms: 1_000,
        }
    }

    fn issued(id: &str, list: u32, idx: u32) -> IssuedCredential {
        IssuedCredential {
            id: id.to_owned(),
            offer: "o".to_owned(),
            vct: "urn:t".to_owned(),
            sub: "did:example:h".to_owned(),
            iat: 1,
            exp: 2,
            list: ListId(list),
            idx,
            status: StatusCode::Valid,
        }
    }

    #[tokio::test]
    async fn a_code_is_redeemed_once_even_when_raced() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let store = Store::open(dir.path()).unwrap_or_else(|e| panic!("{e}"));
        store
            .run(CreateOffer(offer("o", "code", None)))
            .await
            .unwrap_or_else(|e| panic!("{e}"))
            .unwrap_or_else(|e| panic!("{e}"));
        let mut tasks = Vec::new();
        for i in 0..20 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                store.run(redeem("code", None, &format!("token-{i}"))).await
            }));
        }
        let mut ok = 0;
        for t in tasks {
            match t.await.unwrap_or_else(|e| panic!("{e}")) {
                Ok(Ok(_)) => ok += 1,
                Ok(Err(e)) => assert_eq!(e.code, OAuthCode::InvalidGrant, "{e:?}"),
                Err(e) => panic!("{e}"),
            }
        }
        assert_eq!(ok, 1, "exactly one of 20 racing redemptions wins");
        let unknown = store.run(redeem("other", None, "t")).await;
        assert!(matches!(unknown, Ok(Err(e)) if e.code == OAuthCode::InvalidGrant));
    }

    #[tokio::test]
    async fn five_wrong_tx_codes_lock_the_offer_across_restarts() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        {
            let store = Store::open(dir.path()).unwrap_or_else(|e| panic!("{e}"));
            store
                .run(CreateOffer(offer("o", "code", Some("123456"))))
                .await
                .unwrap_or_else(|e| panic!("{e}"))
                .unwrap_or_else(|e| panic!("{e}"));
            let missing = store.run(redeem("code", None, "t")).await;
            assert!(matches!(missing, Ok(Err(e)) if e.code == OAuthCode::InvalidRequest));
            for _ in 0..3 {
                let wrong = store.run(redeem("code", Some("000000"), "t")).await;
                assert!(matches!(wrong, Ok(Err(e)) if e.code == OAuthCode::InvalidGrant));
            }
        }
        // Failures are durable: a restart (sled rebuilt from the log) does not reset them.
        std::fs::remove_dir_all(dir.path().join("state")).unwrap_or_else(|e| panic!("{e}"));
        let store = Store::open(dir.path()).unwrap_or_else(|e| panic!("{e}"));
        for _ in 0..2 {
            let wrong = store.run(redeem("code", Some("000000"), "t")).await;
            assert!(matches!(wrong, Ok(Err(e)) if e.code == OAuthCode::InvalidGrant));
        }
        let right = store.run(redeem("code", Some("123456"), "t")).await;
        match right {
            Ok(Err(e)) => assert!(e.description.contains("locked"), "{e:?}"),
            other => panic!("expected a locked offer, found {other:?}"),
        }
    }

    #[tokio::test]
    async fn a_token_issues_once_and_state_survives_a_rebuild() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let first = {
            let store = Store::open(dir.path()).unwrap_or_else(|e| panic!("{e}"));
            store
                .run(CreateOffer(offer("o", "code", None)))
                .await
                .unwrap_or_else(|e| panic!("{e}"))
                .unwrap_or_else(|e| panic!("{e}"));
            store
                .run(redeem("code", None, "token"))
                .await
                .unwrap_or_else(|e| panic!("{e}"))
                .unwrap_or_else(|e| panic!("{e:?}"));
            let token = access_token("o", "token");
            for wrong in [
                access_token("o", "tokem"),
                access_token("p", "token"),
                "o".to_owned(),
                "token".to_owned(),
            ] {
                let refused = offer_for_token(&store, &wrong, 1_000);
                assert!(
                    matches!(&refused, Err(e) if e.code == OAuthCode::InvalidToken),
                    "{wrong}: {refused:?}"
                );
            }
            assert!(
                offer_for_token(&store, &token, 2_000_000).is_err(),
                "an expired token is refused"
            );
            let (live, read) =
                offer_for_token(&store, &token, 1_000).unwrap_or_else(|e| panic!("{e:?}"));
            let (list, idx) = store.allocate_index();
            let use_token = |id: &str| UseToken {
                offer: live.clone(),
                read: read.clone(),
                credentials: vec![issued(id, list.0, idx)],
            };
            let (a, b) = tokio::join!(store.run(use_token("c1")), store.run(use_token("c2")));
            let wins = [a, b]
                .into_iter()
                .filter(|r| matches!(r, Ok(Ok(()))))
                .count();
            assert_eq!(wins, 1, "a token issues once");
            assert!(offer_for_token(&store, &token, 1_000).is_err());
            let changed = store
                .run(SetStatus {
                    credential: "c1".to_owned(),
                    status: StatusCode::Suspended,
                    by: "op".to_owned(),
                    at_ms: 5,
                })
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            let c1 = changed.is_ok();
            let id = if c1 { "c1" } else { "c2" };
            if !c1 {
                store
                    .run(SetStatus {
                        credential: id.to_owned(),
                        status: StatusCode::Suspended,
                        by: "op".to_owned(),
                        at_ms: 5,
                    })
                    .await
                    .unwrap_or_else(|e| panic!("{e}"))
                    .unwrap_or_else(|e| panic!("{e}"));
            }
            (id.to_owned(), list, idx)
        };
        // sled is derived: rebuilt from the log alone, everything is there.
        std::fs::remove_dir_all(dir.path().join("state")).unwrap_or_else(|e| panic!("{e}"));
        let store = Store::open(dir.path()).unwrap_or_else(|e| panic!("{e}"));
        let (id, list, idx) = first;
        let record: IssuedCredential = store
            .get_json(&credential_key(&id), "credential")
            .unwrap_or_else(|e| panic!("{e}"))
            .unwrap_or_else(|| panic!("credential {id} lost"));
        assert_eq!((record.list, record.idx), (list, idx));
        assert_eq!(record.status, StatusCode::Suspended);
        let o: Offer = store
            .get_json(&offer_key("o"), "offer")
            .unwrap_or_else(|e| panic!("{e}"))
            .unwrap_or_else(|| panic!("offer lost"));
        assert!(matches!(o.state, OfferState::Issued { .. }));
        assert!(o.claims.is_empty(), "claims are dropped once issued");
        // Revocation is final; an index is never handed out again.
        store
            .run(SetStatus {
                credential: id.clone(),
                status: StatusCode::Revoked,
                by: "op".to_owned(),
                at_ms: 6,
            })
            .await
            .unwrap_or_else(|e| panic!("{e}"))
            .unwrap_or_else(|e| panic!("{e}"));
        let back = store
            .run(SetStatus {
                credential: id,
                status: StatusCode::Valid,
                by: "op".to_owned(),
                at_ms: 7,
            })
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(matches!(back, Err(StatusChangeError::Final(_))));
        for _ in 0..2_000 {
            assert_ne!(store.allocate_index(), (list, idx));
        }
    }

    #[tokio::test]
    async fn allocated_indices_are_unique() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let store = Store::open(dir.path()).unwrap_or_else(|e| panic!("{e}"));
        let mut seen = std::collections::HashSet::new();
        for _ in 0..20_000 {
            let (list, idx) = store.allocate_index();
            assert_eq!(list, ListId(1));
            assert!(idx < crate::status::LIST_LEN);
            assert!(seen.insert(idx), "index {idx} handed out twice");
        }
    }

    #[test]
    fn tx_codes_are_six_digits() {
        for _ in 0..100 {
            let code = random_tx_code();
            assert_eq!(code.len(), TX_CODE_DIGITS);
            assert!(code.bytes().all(|b| b.is_ascii_digit()), "{code}");
        }
    }

    #[test]
    fn tx_code_hashes_are_bound_to_the_offer() {
        assert_ne!(hash_tx_code("a", "123456"), hash_tx_code("b", "123456"));
        assert!(same(&hash_tx_code("a", "1"), &hash_tx_code("a", "1")));
        assert!(!same(&hash_tx_code("a", "1"), &hash_tx_code("a", "2")));
    }

    #[test]
    fn offer_uris_carry_the_grant() {
        let uri = offer_uri("http://127.0.0.1:1", "ResidentIdentity", "abc", true, "d");
        let (scheme, query) = uri.split_once("?credential_offer=").unwrap_or_default();
        assert_eq!(scheme, "openid-credential-offer://");
        let json = percent_encoding::percent_decode_str(query).decode_utf8_lossy();
        let offer: serde_json::Value = serde_json::from_str(&json).unwrap_or_default();
        assert_eq!(offer["credential_issuer"], "http://127.0.0.1:1");
        let grant = &offer["grants"][crate::oid4vci::PRE_AUTHORIZED_GRANT];
        assert_eq!(grant["pre-authorized_code"], "abc");
        assert_eq!(grant["tx_code"]["length"], 6);
    }
}
