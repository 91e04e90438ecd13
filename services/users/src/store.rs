//! SQL for users. Every value is a bind parameter; no SQL text is ever built from input.

use chrono::{DateTime, Utc};
use panthera_kit::Page;
use sqlx::{PgConnection, PgPool, Postgres, QueryBuilder};
use uuid::Uuid;

use crate::model::{User, UserStatus};

const COLUMNS: &str = "id, first_name, last_name, email, status, roles, created_at, updated_at";

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database query failed")]
    Query(#[from] sqlx::Error),
    #[error("the database holds an unknown user status {0:?}")]
    UnknownStatus(String),
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

#[derive(sqlx::FromRow)]
struct UserRow {
    id: Uuid,
    first_name: String,
    last_name: String,
    email: String,
    status: String,
    roles: Vec<String>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl TryFrom<UserRow> for User {
    type Error = StoreError;

    fn try_from(row: UserRow) -> Result<Self> {
        Ok(User {
            status: UserStatus::parse(&row.status).ok_or(StoreError::UnknownStatus(row.status))?,
            id: row.id,
            first_name: row.first_name,
            last_name: row.last_name,
            email: row.email,
            roles: row.roles,
            created_at: row.created_at,
            updated_at: row.updated_at,
        })
    }
}

pub struct NewUserRow<'a> {
    pub first_name: &'a str,
    pub last_name: &'a str,
    pub email: &'a str,
    pub status: UserStatus,
    pub roles: &'a [String],
    pub password_hash: &'a str,
}

pub async fn insert(conn: &mut PgConnection, user: &NewUserRow<'_>) -> Result<User> {
    let row: UserRow = sqlx::query_as(&format!(
        "INSERT INTO users (id, first_name, last_name, email, status, password_hash, roles) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {COLUMNS}"
    ))
    .bind(Uuid::new_v4())
    .bind(user.first_name)
    .bind(user.last_name)
    .bind(user.email)
    .bind(user.status.as_str())
    .bind(user.password_hash)
    .bind(user.roles)
    .fetch_one(conn)
    .await?;
    row.try_into()
}

/// Inserts the user unless one with the e-mail exists; `None` then. Used for the first
/// administrator, so that every start-up (and every replica) may try it safely.
pub async fn insert_if_absent(
    conn: &mut PgConnection,
    user: &NewUserRow<'_>,
) -> Result<Option<User>> {
    let row: Option<UserRow> = sqlx::query_as(&format!(
        "INSERT INTO users (id, first_name, last_name, email, status, password_hash, roles) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (email) DO NOTHING RETURNING {COLUMNS}"
    ))
    .bind(Uuid::new_v4())
    .bind(user.first_name)
    .bind(user.last_name)
    .bind(user.email)
    .bind(user.status.as_str())
    .bind(user.password_hash)
    .bind(user.roles)
    .fetch_optional(conn)
    .await?;
    row.map(User::try_from).transpose()
}

pub async fn get(pool: &PgPool, id: Uuid) -> Result<Option<User>> {
    let row: Option<UserRow> =
        sqlx::query_as(&format!("SELECT {COLUMNS} FROM users WHERE id = $1"))
            .bind(id)
            .fetch_optional(pool)
            .await?;
    row.map(User::try_from).transpose()
}

pub struct ListFilter<'a> {
    pub email: Option<&'a str>,
    pub status: Option<UserStatus>,
}

/// One page in creation order, and the number of users matching the filter.
///
/// Only the filters present go into the SQL (as bind parameters), so each combination gets a plan
/// that uses its index.
pub async fn list(pool: &PgPool, filter: &ListFilter<'_>, page: Page) -> Result<(Vec<User>, i64)> {
    if filter.email.is_some() {
        return list_by_email(pool, filter, page).await;
    }
    // One round trip: the total (kept by triggers in `user_counts`) rides along as a scalar
    // subquery. On two cores a second query per page costs more than it saves.
    let mut query = QueryBuilder::<Postgres>::new(format!("SELECT {COLUMNS}, "));
    match filter.status {
        Some(status) => {
            query
                .push("(SELECT coalesce(max(total), 0)::bigint FROM user_counts WHERE status = ")
                .push_bind(status.as_str())
                .push(") AS total_count FROM users");
        }
        None => {
            query.push("(SELECT coalesce(sum(total), 0)::bigint FROM user_counts) AS total_count FROM users");
        }
    }
    push_filter(&mut query, filter);
    query.push(" ORDER BY created_at, id LIMIT ");
    query.push_bind(page.limit);
    query.push(" OFFSET ");
    query.push_bind(page.offset);
    let rows: Vec<CountedUserRow> = query.build_query_as().fetch_all(pool).await?;
    let total = match rows.first() {
        Some(row) => row.total_count,
        // Past the last page there is no row to carry the total.
        None => count(pool, filter).await?,
    };
    let users = rows
        .into_iter()
        .map(|r| User::try_from(r.user))
        .collect::<Result<Vec<_>>>()?;
    Ok((users, total))
}

#[derive(sqlx::FromRow)]
struct CountedUserRow {
    #[sqlx(flatten)]
    user: UserRow,
    total_count: i64,
}

async fn list_by_email(
    pool: &PgPool,
    filter: &ListFilter<'_>,
    page: Page,
) -> Result<(Vec<User>, i64)> {
    let mut rows_query = QueryBuilder::<Postgres>::new(format!("SELECT {COLUMNS} FROM users"));
    push_filter(&mut rows_query, filter);
    rows_query.push(" ORDER BY created_at, id LIMIT ");
    rows_query.push_bind(page.limit);
    rows_query.push(" OFFSET ");
    rows_query.push_bind(page.offset);
    let rows: Vec<UserRow> = rows_query.build_query_as().fetch_all(pool).await?;
    let total = count(pool, filter).await?;
    let users = rows
        .into_iter()
        .map(User::try_from)
        .collect::<Result<Vec<_>>>()?;
    Ok((users, total))
}

fn push_filter<'a>(query: &mut QueryBuilder<'a, Postgres>, filter: &ListFilter<'a>) {
    let mut separator = " WHERE ";
    if let Some(email) = filter.email {
        query.push(separator).push("email = ").push_bind(email);
        separator = " AND ";
    }
    if let Some(status) = filter.status {
        query
            .push(separator)
            .push("status = ")
            .push_bind(status.as_str());
    }
}

/// Totals come from `user_counts` (kept by triggers) unless an email narrows the list to at most
/// one row, which the unique index finds directly.
async fn count(pool: &PgPool, filter: &ListFilter<'_>) -> Result<i64> {
    let total: Option<i64> = match (filter.email, filter.status) {
        (Some(_), _) => {
            let mut query = QueryBuilder::<Postgres>::new("SELECT count(*) FROM users");
            push_filter(&mut query, filter);
            query.build_query_scalar().fetch_one(pool).await?
        }
        (None, Some(status)) => {
            sqlx::query_scalar("SELECT total FROM user_counts WHERE status = $1")
                .bind(status.as_str())
                .fetch_optional(pool)
                .await?
        }
        (None, None) => {
            sqlx::query_scalar("SELECT sum(total)::bigint FROM user_counts")
                .fetch_one(pool)
                .await?
        }
    };
    Ok(total.unwrap_or(0))
}

pub struct Changes<'a> {
    pub first_name: Option<&'a str>,
    pub last_name: Option<&'a str>,
    pub email: Option<&'a str>,
    pub status: Option<UserStatus>,
    pub roles: Option<&'a [String]>,
    pub password_hash: Option<&'a str>,
}

pub async fn update(
    conn: &mut PgConnection,
    id: Uuid,
    changes: &Changes<'_>,
) -> Result<Option<User>> {
    let row: Option<UserRow> = sqlx::query_as(&format!(
        "UPDATE users SET \
             first_name = COALESCE($2, first_name), \
             last_name = COALESCE($3, last_name), \
             email = COALESCE($4, email), \
             status = COALESCE($5, status), \
             password_hash = COALESCE($6, password_hash), \
             roles = COALESCE($7, roles), \
             updated_at = now() \
         WHERE id = $1 RETURNING {COLUMNS}"
    ))
    .bind(id)
    .bind(changes.first_name)
    .bind(changes.last_name)
    .bind(changes.email)
    .bind(changes.status.map(UserStatus::as_str))
    .bind(changes.password_hash)
    .bind(changes.roles)
    .fetch_optional(conn)
    .await?;
    row.map(User::try_from).transpose()
}

pub async fn delete(conn: &mut PgConnection, id: Uuid) -> Result<Option<User>> {
    let row: Option<UserRow> = sqlx::query_as(&format!(
        "DELETE FROM users WHERE id = $1 RETURNING {COLUMNS}"
    ))
    .bind(id)
    .fetch_optional(conn)
    .await?;
    row.map(User::try_from).transpose()
}

/// The user with this (normalised) e-mail and their password hash, for sign-in.
pub async fn credentials(pool: &PgPool, email: &str) -> Result<Option<(User, String)>> {
    #[derive(sqlx::FromRow)]
    struct Row {
        #[sqlx(flatten)]
        user: UserRow,
        password_hash: String,
    }
    let row: Option<Row> = sqlx::query_as(&format!(
        "SELECT {COLUMNS}, password_hash FROM users WHERE email = $1"
    ))
    .bind(email)
    .fetch_optional(pool)
    .await?;
    row.map(|row| Ok((User::try_from(row.user)?, row.password_hash)))
        .transpose()
}
