//! Argon2id password hashing, off the async runtime (a hash takes tens of milliseconds of CPU).

use std::sync::OnceLock;

use argon2::Argon2;
use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};

#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    #[error("hashing a password: {0}")]
    Hash(argon2::password_hash::Error),
    #[error("reading a stored password hash: {0}")]
    StoredHash(argon2::password_hash::Error),
    #[error("running the password hasher")]
    Join(#[from] tokio::task::JoinError),
}

pub type Result<T, E = PasswordError> = std::result::Result<T, E>;

fn hash_blocking(password: &str) -> Result<String> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(PasswordError::Hash)
}

fn verify_blocking(password: &str, stored: &str) -> Result<bool> {
    let parsed = PasswordHash::new(stored).map_err(PasswordError::StoredHash)?;
    match Argon2::default().verify_password(password.as_bytes(), &parsed) {
        Ok(()) => Ok(true),
        Err(argon2::password_hash::Error::Password) => Ok(false),
        Err(other) => Err(PasswordError::StoredHash(other)),
    }
}

pub async fn hash(password: String) -> Result<String> {
    tokio::task::spawn_blocking(move || hash_blocking(&password)).await?
}

pub async fn verify(password: String, stored: String) -> Result<bool> {
    tokio::task::spawn_blocking(move || verify_blocking(&password, &stored)).await?
}

/// Spends the same work as a real verification when the e-mail is unknown, so response times do
/// not reveal which addresses have accounts.
pub async fn verify_unknown_user(password: String) -> Result<bool> {
    static DUMMY: OnceLock<String> = OnceLock::new();
    let stored = match DUMMY.get() {
        Some(hash) => hash.clone(),
        None => {
            let hash = hash("panthera-dummy-password".to_owned()).await?;
            DUMMY.get_or_init(|| hash).clone()
        }
    };
    verify(password, stored).await.map(|_| false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_verify_and_are_salted() {
        let first = hash("correct horse".into()).await.unwrap();
        let second = hash("correct horse".into()).await.unwrap();
        assert!(first.starts_with("$argon2id$"));
        assert_ne!(first, second);
        assert!(verify("correct horse".into(), first.clone()).await.unwrap());
        assert!(!verify("wrong horse".into(), first).await.unwrap());
        assert!(!verify_unknown_user("anything".into()).await.unwrap());
    }
}
