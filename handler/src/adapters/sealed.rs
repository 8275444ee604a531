//! Secrets at rest: with `DISPATCHER_ENCRYPTION_KEY`, every secret of a webhook (its signing secrets, the
//! credentials of `auth` and `callbackAuth`, the values of `headers`) is stored encrypted with
//! XChaCha20-Poly1305 and opened only in memory, whichever store keeps it. A decorator of the `WebhookStore`
//! port, so that SQLite and Cosmos DB never see a secret in the clear. The inbound sources' secrets likewise
//! (`SealedSources`).
//!
//! A sealed value is `enc:v1:` + base64 of a random 24-byte nonce and the ciphertext, bound to its webhook's id
//! (the associated data), so that it cannot be moved to another webhook. Plain values (stored before the key
//! was set) are read as they are and sealed on the webhook's next write.

use crate::ports::{SourceStore, StoreError, Version, WebhookStore};
use async_trait::async_trait;
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use dispatcher_core::inbound::SourceRecord;
use dispatcher_core::model::{Webhook, WebhookId};
use std::sync::Arc;

const SEALED: &str = "enc:v1:";
const NONCE_LEN: usize = 24;

/// The key secrets are sealed with: 32 bytes, given as base64. `Debug` never shows it.
#[derive(Clone)]
pub struct EncryptionKey(Arc<XChaCha20Poly1305>);

/// What is wrong with a key, never what it is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("not base64 (32 random bytes, base64)")]
    NotBase64,
    #[error("{0} bytes, expected 32 (e.g. `openssl rand -base64 32`)")]
    WrongLength(usize),
}

impl EncryptionKey {
    pub fn parse(text: &str) -> Result<EncryptionKey, KeyError> {
        let bytes = BASE64.decode(text.trim()).map_err(|_| KeyError::NotBase64)?;
        let cipher = XChaCha20Poly1305::new_from_slice(&bytes).map_err(|_| KeyError::WrongLength(bytes.len()))?;
        Ok(EncryptionKey(Arc::new(cipher)))
    }
}

impl std::fmt::Debug for EncryptionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EncryptionKey(***)")
    }
}

/// A webhook store whose secrets are sealed on the way in and opened on the way out.
pub struct SealedWebhooks {
    inner: Arc<dyn WebhookStore>,
    key: Option<EncryptionKey>,
}

impl SealedWebhooks {
    /// `inner` with secrets sealed under `key`; without a key, stored as they are (and a sealed one found is an
    /// error that says the key is missing).
    pub fn new(inner: Arc<dyn WebhookStore>, key: Option<EncryptionKey>) -> SealedWebhooks {
        SealedWebhooks { inner, key }
    }

    fn seal(&self, webhook: &Webhook) -> Result<Webhook, StoreError> {
        let Some(key) = &self.key else { return Ok(webhook.clone()) };
        let mut sealed = webhook.clone();
        for secret in sealed.secrets_mut() {
            seal(key, secret, webhook.id.as_str())?;
        }
        Ok(sealed)
    }

    fn open(&self, mut webhook: Webhook) -> Result<Webhook, StoreError> {
        let owner = format!("webhook {}", webhook.id);
        let aad = webhook.id.to_string();
        for secret in webhook.secrets_mut() {
            open(self.key.as_ref(), secret, &aad, &owner)?;
        }
        Ok(webhook)
    }
}

/// Seals `secret` in place under `key`, bound to `aad` (its owner's id).
fn seal(key: &EncryptionKey, secret: &mut String, aad: &str) -> Result<(), StoreError> {
    let mut nonce = [0u8; NONCE_LEN];
    getrandom::fill(&mut nonce).map_err(|e| StoreError::Storage(format!("no random nonce: {e}")))?;
    let payload = Payload { msg: secret.as_bytes(), aad: aad.as_bytes() };
    let ciphertext = key
        .0
        .encrypt(&XNonce::from(nonce), payload)
        .map_err(|_| StoreError::Storage("sealing a secret failed".to_owned()))?;
    *secret = format!("{SEALED}{}", BASE64.encode([&nonce[..], &ciphertext].concat()));
    Ok(())
}

/// Opens `secret` in place when it is sealed (bound to `aad`); `owner` names whose it is in errors.
fn open(key: Option<&EncryptionKey>, secret: &mut String, aad: &str, owner: &str) -> Result<(), StoreError> {
    let Some(sealed) = secret.strip_prefix(SEALED) else { return Ok(()) };
    let Some(key) = key else {
        return Err(StoreError::Corrupt(format!(
            "the secrets of {owner} are encrypted: set DISPATCHER_ENCRYPTION_KEY to the key they were sealed with"
        )));
    };
    let wrong_key = || {
        StoreError::Corrupt(format!(
            "a secret of {owner} does not open with DISPATCHER_ENCRYPTION_KEY: it was sealed with another key, or altered"
        ))
    };
    let bytes = BASE64.decode(sealed).map_err(|_| wrong_key())?;
    if bytes.len() < NONCE_LEN {
        return Err(wrong_key());
    }
    let (nonce, ciphertext) = bytes.split_at(NONCE_LEN);
    let nonce = XNonce::try_from(nonce).map_err(|_| wrong_key())?;
    let plain = key.0.decrypt(&nonce, Payload { msg: ciphertext, aad: aad.as_bytes() }).map_err(|_| wrong_key())?;
    *secret = String::from_utf8(plain).map_err(|_| wrong_key())?;
    Ok(())
}

/// A source store whose sources' secrets are sealed like the webhooks' (bound to `source:<id>`, so that a
/// sealed value moves neither to another source nor to a webhook of the same id). Receipts hold no secret.
pub struct SealedSources {
    inner: Arc<dyn SourceStore>,
    key: Option<EncryptionKey>,
}

impl SealedSources {
    pub fn new(inner: Arc<dyn SourceStore>, key: Option<EncryptionKey>) -> SealedSources {
        SealedSources { inner, key }
    }

    fn open(&self, mut source: SourceRecord) -> Result<SourceRecord, StoreError> {
        let (aad, owner) = (format!("source:{}", source.id), format!("source {}", source.id));
        for secret in source.secrets_mut() {
            open(self.key.as_ref(), secret, &aad, &owner)?;
        }
        Ok(source)
    }
}

#[async_trait]
impl SourceStore for SealedSources {
    async fn put_source(&self, source: &SourceRecord, expected: Option<&Version>) -> Result<Version, StoreError> {
        let mut sealed = source.clone();
        if let Some(key) = &self.key {
            let aad = format!("source:{}", source.id);
            for secret in sealed.secrets_mut() {
                seal(key, secret, &aad)?;
            }
        }
        self.inner.put_source(&sealed, expected).await
    }

    async fn get_source(&self, id: &str) -> Result<Option<(SourceRecord, Version)>, StoreError> {
        self.inner.get_source(id).await?.map(|(source, version)| Ok((self.open(source)?, version))).transpose()
    }

    async fn list_sources(&self) -> Result<Vec<SourceRecord>, StoreError> {
        self.inner.list_sources().await?.into_iter().map(|source| self.open(source)).collect()
    }

    async fn delete_source(&self, id: &str) -> Result<bool, StoreError> {
        self.inner.delete_source(id).await
    }

    async fn received(&self, source: &str, key: &str, since_ms: i64) -> Result<bool, StoreError> {
        self.inner.received(source, key, since_ms).await
    }

    async fn record_receipt(&self, source: &str, key: &str, at_ms: i64) -> Result<(), StoreError> {
        self.inner.record_receipt(source, key, at_ms).await
    }
}

#[async_trait]
impl WebhookStore for SealedWebhooks {
    async fn put_webhook(&self, webhook: &Webhook, expected: Option<&Version>) -> Result<Version, StoreError> {
        self.inner.put_webhook(&self.seal(webhook)?, expected).await
    }

    async fn get_webhook(&self, id: &WebhookId) -> Result<Option<(Webhook, Version)>, StoreError> {
        self.inner.get_webhook(id).await?.map(|(webhook, version)| Ok((self.open(webhook)?, version))).transpose()
    }

    async fn list_webhooks(&self) -> Result<Vec<Webhook>, StoreError> {
        self.inner.list_webhooks().await?.into_iter().map(|webhook| self.open(webhook)).collect()
    }

    async fn delete_webhook(&self, id: &WebhookId) -> Result<bool, StoreError> {
        self.inner.delete_webhook(id).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dispatcher_core::model::{OAuth2Client, Secret, TargetAuth, WebhookConfig, WebhookId};
    use std::collections::BTreeMap;
    use std::sync::Mutex;

    /// Keeps webhooks as they are given: what a store would write (versions are the stores' own concern,
    /// tested in tests/it/store_suite.rs).
    #[derive(Default)]
    struct Kept(Mutex<BTreeMap<String, Webhook>>);

    fn any_version() -> Version {
        Version("1".into())
    }

    #[async_trait]
    impl WebhookStore for Kept {
        async fn put_webhook(&self, webhook: &Webhook, _: Option<&Version>) -> Result<Version, StoreError> {
            self.0.lock().unwrap().insert(webhook.id.to_string(), webhook.clone());
            Ok(any_version())
        }
        async fn get_webhook(&self, id: &WebhookId) -> Result<Option<(Webhook, Version)>, StoreError> {
            Ok(self.0.lock().unwrap().get(id.as_str()).cloned().map(|w| (w, any_version())))
        }
        async fn list_webhooks(&self) -> Result<Vec<Webhook>, StoreError> {
            Ok(self.0.lock().unwrap().values().cloned().collect())
        }
        async fn delete_webhook(&self, id: &WebhookId) -> Result<bool, StoreError> {
            Ok(self.0.lock().unwrap().remove(id.as_str()).is_some())
        }
    }

    fn key(byte: u8) -> Option<EncryptionKey> {
        Some(EncryptionKey::parse(&BASE64.encode([byte; 32])).unwrap())
    }

    fn webhook(id: &str) -> Webhook {
        let oauth2 = OAuth2Client {
            token_url: Some("https://idp.example/token".into()),
            issuer: None,
            client_id: "dispatcher".into(),
            client_secret: "client-s3cret".into(),
            scope: None,
            audience: None,
        };
        let config = WebhookConfig {
            url: "https://a.example".into(),
            subscriptions: vec!["ping".into()],
            headers: BTreeMap::from([("x-api-key".to_owned(), "api-k3y".to_owned())]),
            auth: Some(TargetAuth::OAuth2(oauth2)),
            callback_auth: Some(TargetAuth::Basic { username: "owner".into(), password: "callback-pa55".into() }),
            ..Default::default()
        };
        Webhook::new(id.into(), config, Secret::from_key(&[9; 32]), 0)
    }

    #[tokio::test]
    async fn every_secret_is_sealed_in_the_store_and_opened_only_with_its_key() {
        let kept = Arc::new(Kept::default());
        let sealed = SealedWebhooks::new(kept.clone(), key(1));
        let original = webhook("wh1");
        sealed.put_webhook(&original, None).await.unwrap();
        let stored = serde_json::to_string(&kept.0.lock().unwrap()["wh1"]).unwrap();
        for secret in ["client-s3cret", "callback-pa55", "api-k3y", original.secret.expose()] {
            assert!(!stored.contains(secret), "{secret} in {stored}");
        }
        assert_eq!(stored.matches(SEALED).count(), 4, "{stored}");
        assert!(stored.contains("dispatcher") && stored.contains("owner"), "only secrets are sealed");
        assert_eq!(sealed.get_webhook(&"wh1".into()).await.unwrap(), Some((original.clone(), any_version())));
        assert_eq!(sealed.list_webhooks().await.unwrap(), std::slice::from_ref(&original));

        let error = SealedWebhooks::new(kept.clone(), key(2)).list_webhooks().await.unwrap_err().to_string();
        assert!(error.contains("does not open with DISPATCHER_ENCRYPTION_KEY"), "{error}");
        let error = SealedWebhooks::new(kept.clone(), None).get_webhook(&"wh1".into()).await.unwrap_err().to_string();
        assert!(error.contains("are encrypted: set DISPATCHER_ENCRYPTION_KEY"), "{error}");

        // A sealed secret moved to another webhook does not open there.
        let mut moved = kept.0.lock().unwrap()["wh1"].clone();
        moved.id = "wh2".into();
        kept.0.lock().unwrap().insert("wh2".into(), moved);
        assert!(sealed.get_webhook(&"wh2".into()).await.is_err());
    }

    #[tokio::test]
    async fn plain_secrets_stored_before_the_key_are_read_and_sealed_on_the_next_write() {
        let kept = Arc::new(Kept::default());
        SealedWebhooks::new(kept.clone(), None).put_webhook(&webhook("wh1"), None).await.unwrap();
        assert!(serde_json::to_string(&kept.0.lock().unwrap()["wh1"]).unwrap().contains("client-s3cret"));
        let sealed = SealedWebhooks::new(kept.clone(), key(1));
        let (read, version) = sealed.get_webhook(&"wh1".into()).await.unwrap().unwrap();
        assert_eq!(read, webhook("wh1"));
        sealed.put_webhook(&read, Some(&version)).await.unwrap();
        assert!(!serde_json::to_string(&kept.0.lock().unwrap()["wh1"]).unwrap().contains("client-s3cret"));
        assert_eq!(sealed.get_webhook(&"wh1".into()).await.unwrap(), Some((webhook("wh1"), any_version())));
    }

    #[test]
    fn a_key_that_is_not_32_bytes_of_base64_is_refused_without_being_shown() {
        let error = EncryptionKey::parse("c2hvcnQ=").unwrap_err();
        assert_eq!(error.to_string(), "5 bytes, expected 32 (e.g. `openssl rand -base64 32`)");
        let error = EncryptionKey::parse("not base64!").unwrap_err();
        assert_eq!(error, KeyError::NotBase64);
        assert_eq!(format!("{:?}", key(1).unwrap()), "EncryptionKey(***)");
    }
}
