//! Events this service publishes through its outbox: `user.created`, `user.updated`,
//! `user.deleted`, keyed by the user id. Payloads carry the public user fields, never the hash.

use panthera_kit::outbox::{self, OutgoingEvent};
use sqlx::PgConnection;

use crate::model::User;

pub const USER_CREATED: &str = "user.created";
pub const USER_UPDATED: &str = "user.updated";
pub const USER_DELETED: &str = "user.deleted";

/// Default topic when `KAFKA_TOPICS` is empty but brokers are configured.
pub const DEFAULT_TOPIC: &str = "users";

pub async fn record(
    conn: &mut PgConnection,
    topic: &str,
    event_type: &str,
    user: &User,
) -> Result<(), sqlx::Error> {
    let data = serde_json::to_value(user).map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
    outbox::enqueue(
        conn,
        &OutgoingEvent {
            topic: topic.to_owned(),
            key: user.id.to_string(),
            event_type: event_type.to_owned(),
            data,
        },
    )
    .await
    .map(|_| ())
}
