//! HTTP handlers of `/v1/users` and `/v1/auth/token`.

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use panthera_kit::error::{Problem, is_unique_violation};
use panthera_kit::{ApiError, ApiJson, ApiPath, ApiQuery, Caller, Page, Paginated, ResultExt};
use uuid::Uuid;

use crate::app::AppState;
use crate::events;
use crate::model::{
    CreateUser, ListUsersQuery, TokenRequest, TokenResponse, UpdateUser, User, UserStatus,
    normalize_email,
};
use crate::password;
use crate::store::{self, StoreError};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/users", get(list_users).post(create_user))
        .route(
            "/v1/users/{id}",
            get(get_user).patch(update_user).delete(delete_user),
        )
        .route("/v1/auth/token", post(issue_token))
        .route("/openapi.json", get(crate::openapi::serve))
}

fn store_error(action: &'static str) -> impl FnOnce(StoreError) -> ApiError {
    move |error| ApiError::internal(action, error)
}

fn email_taken() -> ApiError {
    ApiError::Conflict("a user with this email already exists".to_owned())
}

/// Another user's record looks like a missing one to a caller who may not see it, so ids of
/// other users cannot be probed (OWASP API1: broken object-level authorization).
fn own_or_admin(caller: &Caller, id: Uuid) -> Result<(), ApiError> {
    if caller.is_admin() || caller.subject == id.to_string() {
        Ok(())
    } else {
        Err(ApiError::NotFound("user"))
    }
}

/// List users, newest last, in the seed envelope. Administrators only.
#[utoipa::path(
    get, path = "/v1/users", tag = "users",
    params(ListUsersQuery),
    responses(
        (status = 200, description = "A page of users", body = Paginated<User>),
        (status = 401, description = "No authenticated caller", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The caller is not an administrator", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid query parameter", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn list_users(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(query): ApiQuery<ListUsersQuery>,
) -> Result<Json<Paginated<User>>, ApiError> {
    caller.require_admin()?;
    let page = Page::new(query.limit, query.offset).map_err(ApiError::Validation)?;
    let email = query.email.as_deref().map(normalize_email);
    let filter = store::ListFilter {
        email: email.as_deref(),
        status: query.status,
    };
    let (users, total) = store::list(&state.pool, &filter, page)
        .await
        .map_err(store_error("listing users"))?;
    Ok(Json(Paginated::new(users, page, total)))
}

/// Sign up: anyone may create an ordinary active user (no roles, no status to choose).
#[utoipa::path(
    post, path = "/v1/users", tag = "users",
    request_body = CreateUser,
    responses(
        (status = 201, description = "Created", body = User, headers(("Location" = String, description = "URL of the new user"))),
        (status = 400, description = "Malformed JSON", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The email is taken", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn create_user(
    State(state): State<AppState>,
    ApiJson(request): ApiJson<CreateUser>,
) -> Result<Response, ApiError> {
    let new = request.validate().map_err(ApiError::Validation)?;
    let password_hash = password::hash(new.password)
        .await
        .or_internal("hashing a new user's password")?;
    let mut tx = state
        .pool
        .begin()
        .await
        .or_internal("starting a transaction")?;
    let row = store::NewUserRow {
        first_name: &new.first_name,
        last_name: &new.last_name,
        email: &new.email,
        status: new.status,
        roles: &[],
        password_hash: &password_hash,
    };
    let user = match store::insert(&mut tx, &row).await {
        Ok(user) => user,
        Err(StoreError::Query(error)) if is_unique_violation(&error) => return Err(email_taken()),
        Err(error) => return Err(ApiError::internal("creating a user", error)),
    };
    if let Some(topic) = &state.events_topic {
        events::record(&mut tx, topic, events::USER_CREATED, &user)
            .await
            .or_internal("recording the user.created event")?;
    }
    tx.commit().await.or_internal("committing a new user")?;
    tracing::info!(user_id = %user.id, "user created");
    let location = format!("/v1/users/{}", user.id);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(user),
    )
        .into_response())
}

/// Get a user: oneself, or anyone for an administrator.
#[utoipa::path(
    get, path = "/v1/users/{id}", tag = "users",
    params(("id" = Uuid, Path, description = "User id")),
    responses(
        (status = 200, description = "The user", body = User),
        (status = 401, description = "No authenticated caller", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such user, or another user's", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn get_user(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<User>, ApiError> {
    own_or_admin(&caller, id)?;
    store::get(&state.pool, id)
        .await
        .map_err(store_error("loading a user"))?
        .map(Json)
        .ok_or(ApiError::NotFound("user"))
}

/// Change some fields of oneself; `status` and `roles`, and other users, are for administrators.
#[utoipa::path(
    patch, path = "/v1/users/{id}", tag = "users",
    params(("id" = Uuid, Path, description = "User id")),
    request_body = UpdateUser,
    responses(
        (status = 200, description = "The updated user", body = User),
        (status = 400, description = "Malformed JSON", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No authenticated caller", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`status` or `roles` changed by a non-administrator", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such user, or another user's", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The email is taken", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn update_user(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(request): ApiJson<UpdateUser>,
) -> Result<Json<User>, ApiError> {
    own_or_admin(&caller, id)?;
    if (request.status.is_some() || request.roles.is_some()) && !caller.is_admin() {
        return Err(ApiError::Forbidden(
            "only administrators change a user's status or roles",
        ));
    }
    let changes = request.validate().map_err(ApiError::Validation)?;
    let password_hash = match changes.password {
        Some(password) => Some(
            password::hash(password)
                .await
                .or_internal("hashing a changed password")?,
        ),
        None => None,
    };
    let mut tx = state
        .pool
        .begin()
        .await
        .or_internal("starting a transaction")?;
    let update = store::Changes {
        first_name: changes.first_name.as_deref(),
        last_name: changes.last_name.as_deref(),
        email: changes.email.as_deref(),
        status: changes.status,
        roles: changes.roles.as_deref(),
        password_hash: password_hash.as_deref(),
    };
    let user = match store::update(&mut tx, id, &update).await {
        Ok(Some(user)) => user,
        Ok(None) => return Err(ApiError::NotFound("user")),
        Err(StoreError::Query(error)) if is_unique_violation(&error) => return Err(email_taken()),
        Err(error) => return Err(ApiError::internal("updating a user", error)),
    };
    if let Some(topic) = &state.events_topic {
        events::record(&mut tx, topic, events::USER_UPDATED, &user)
            .await
            .or_internal("recording the user.updated event")?;
    }
    tx.commit().await.or_internal("committing a user update")?;
    Ok(Json(user))
}

/// Delete oneself, or anyone for an administrator.
#[utoipa::path(
    delete, path = "/v1/users/{id}", tag = "users",
    params(("id" = Uuid, Path, description = "User id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "No authenticated caller", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such user, or another user's", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn delete_user(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<StatusCode, ApiError> {
    own_or_admin(&caller, id)?;
    let mut tx = state
        .pool
        .begin()
        .await
        .or_internal("starting a transaction")?;
    let user = store::delete(&mut tx, id)
        .await
        .map_err(store_error("deleting a user"))?
        .ok_or(ApiError::NotFound("user"))?;
    if let Some(topic) = &state.events_topic {
        events::record(&mut tx, topic, events::USER_DELETED, &user)
            .await
            .or_internal("recording the user.deleted event")?;
    }
    tx.commit()
        .await
        .or_internal("committing a user deletion")?;
    tracing::info!(user_id = %id, "user deleted");
    Ok(StatusCode::NO_CONTENT)
}

/// Exchange an active user's email and password for an access token.
#[utoipa::path(
    post, path = "/v1/auth/token", tag = "auth",
    request_body = TokenRequest,
    responses(
        (status = 200, description = "A bearer token", body = TokenResponse),
        (status = 401, description = "Unknown email, wrong password or user not active", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Token issuing is not configured", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn issue_token(
    State(state): State<AppState>,
    ApiJson(request): ApiJson<TokenRequest>,
) -> Result<Json<TokenResponse>, ApiError> {
    let Some(issuer) = state.tokens.clone() else {
        return Err(ApiError::Unavailable(
            "JWT_HS256_SECRET is not configured".to_owned(),
        ));
    };
    let email = normalize_email(&request.email);
    let found = store::credentials(&state.pool, &email)
        .await
        .map_err(store_error("loading credentials"))?;
    // One answer for every failure, so callers cannot probe which emails have accounts.
    let rejected = || ApiError::Unauthorized("invalid credentials".to_owned());
    let Some((user, hash)) = found else {
        password::verify_unknown_user(request.password)
            .await
            .or_internal("verifying a password")?;
        return Err(rejected());
    };
    let matches = password::verify(request.password, hash)
        .await
        .or_internal("verifying a password")?;
    if !matches || user.status != UserStatus::Active {
        return Err(rejected());
    }
    let token = issuer.issue(&user).or_internal("signing an access token")?;
    Ok(Json(TokenResponse {
        access_token: token,
        token_type: "Bearer",
        expires_in: issuer.ttl().as_secs(),
    }))
}
