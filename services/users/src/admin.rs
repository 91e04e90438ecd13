//! The first administrator, created at start-up from the platform's admin Secret
//! (`ADMIN_EMAIL`, `ADMIN_PASSWORD`; see `docs/contracts.md`).
//!
//! Idempotent: the insert does nothing when a user with that e-mail exists, so every start and
//! every replica may run it, and a password or roles changed later are never reset by a restart.

use panthera_kit::FieldError;
use sqlx::PgPool;

use crate::events;
use crate::model::{CreateUser, UserStatus};
use crate::password;
use crate::store;

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("ADMIN_EMAIL and ADMIN_PASSWORD must be set together")]
    Incomplete,
    #[error("the admin Secret is invalid: {}", describe(.0))]
    Invalid(Vec<FieldError>),
    #[error("hashing the administrator's password")]
    Hash(#[source] password::PasswordError),
    #[error("storing the administrator")]
    Store(#[source] Box<dyn std::error::Error + Send + Sync>),
}

fn describe(errors: &[FieldError]) -> String {
    errors
        .iter()
        .map(|error| format!("{} {}", error.field, error.message))
        .collect::<Vec<_>>()
        .join("; ")
}

/// Creates the administrator when absent; returns whether it was created.
pub async fn ensure_first_admin(
    pool: &PgPool,
    email: Option<&str>,
    password_text: Option<&str>,
    events_topic: Option<&str>,
) -> Result<bool, AdminError> {
    let (email, password_text) = match (email, password_text) {
        (None, None) => return Ok(false),
        (Some(email), Some(password_text)) => (email, password_text),
        _ => return Err(AdminError::Incomplete),
    };
    // The same rules as sign-up, so the administrator can sign in like anyone else.
    let new = CreateUser {
        first_name: "Platform".to_owned(),
        last_name: "Administrator".to_owned(),
        email: email.to_owned(),
        password: password_text.to_owned(),
    }
    .validate()
    .map_err(AdminError::Invalid)?;
    let store_error = |error: store::StoreError| AdminError::Store(Box::new(error));
    let sql_error = |error: sqlx::Error| AdminError::Store(Box::new(error));
    let mut tx = pool.begin().await.map_err(sql_error)?;
    // Cheap check first: hashing is deliberately slow and the usual start finds the admin there.
    let exists: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM users WHERE email = $1)")
        .bind(&new.email)
        .fetch_one(&mut *tx)
        .await
        .map_err(sql_error)?;
    if exists {
        return Ok(false);
    }
    let password_hash = password::hash(new.password)
        .await
        .map_err(AdminError::Hash)?;
    let roles = [panthera_kit::identity::ADMIN_ROLE.to_owned()];
    let row = store::NewUserRow {
        first_name: &new.first_name,
        last_name: &new.last_name,
        email: &new.email,
        status: UserStatus::Active,
        roles: &roles,
        password_hash: &password_hash,
    };
    let Some(user) = store::insert_if_absent(&mut tx, &row)
        .await
        .map_err(store_error)?
    else {
        // Another replica won the race.
        return Ok(false);
    };
    if let Some(topic) = events_topic {
        events::record(&mut tx, topic, events::USER_CREATED, &user)
            .await
            .map_err(|error| AdminError::Store(Box::new(error)))?;
    }
    tx.commit().await.map_err(sql_error)?;
    tracing::info!(user_id = %user.id, "first administrator created");
    Ok(true)
}
