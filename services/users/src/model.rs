//! The API's resources and request bodies, and the rules a valid request follows.

use chrono::{DateTime, Utc};
use panthera_kit::FieldError;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

pub const NAME_MAX_CHARS: usize = 100;
pub const EMAIL_MAX_CHARS: usize = 254;
pub const PASSWORD_MIN_CHARS: usize = 8;
pub const PASSWORD_MAX_CHARS: usize = 128;
pub const ROLE_MAX_CHARS: usize = 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum UserStatus {
    Active,
    Inactive,
    Pending,
}

impl UserStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Inactive => "inactive",
            Self::Pending => "pending",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "active" => Some(Self::Active),
            "inactive" => Some(Self::Inactive),
            "pending" => Some(Self::Pending),
            _ => None,
        }
    }
}

/// A user as the API shows it; the password hash never leaves the service.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct User {
    pub id: Uuid,
    #[schema(example = "Ada")]
    pub first_name: String,
    #[schema(example = "Lovelace")]
    pub last_name: String,
    #[schema(example = "ada@example.com")]
    pub email: String,
    pub status: UserStatus,
    /// Roles the user's tokens carry (`admin` for administrators); set by administrators only.
    pub roles: Vec<String>,
    /// RFC 3339.
    pub created_at: DateTime<Utc>,
    /// RFC 3339.
    pub updated_at: DateTime<Utc>,
}

/// `POST /v1/users`: public sign-up. The new user is `active` with no roles; there is no field to
/// choose either (unknown fields are refused). (No `Debug`: it holds a password.)
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateUser {
    pub first_name: String,
    pub last_name: String,
    pub email: String,
    /// 8 to 128 characters; stored as an Argon2id hash.
    #[schema(format = Password, min_length = 8, max_length = 128)]
    pub password: String,
}

/// `PATCH /v1/users/{id}`: only the fields present change.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpdateUser {
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub email: Option<String>,
    #[schema(format = Password, min_length = 8, max_length = 128)]
    pub password: Option<String>,
    /// Administrators only.
    pub status: Option<UserStatus>,
    /// Administrators only; replaces the user's roles.
    pub roles: Option<Vec<String>>,
}

/// A create request after validation and normalisation.
pub struct NewUser {
    pub first_name: String,
    pub last_name: String,
    pub email: String,
    pub password: String,
    pub status: UserStatus,
}

/// An update request after validation and normalisation.
pub struct UserChanges {
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub email: Option<String>,
    pub password: Option<String>,
    pub status: Option<UserStatus>,
    pub roles: Option<Vec<String>>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListUsersQuery {
    /// Page size, 1 to 100 (default 20).
    #[param(minimum = 1, maximum = 100, default = 20)]
    pub limit: Option<i64>,
    /// Items to skip (default 0).
    #[param(minimum = 0, default = 0)]
    pub offset: Option<i64>,
    /// Exact e-mail address (case-insensitive).
    pub email: Option<String>,
    pub status: Option<UserStatus>,
}

/// `POST /v1/auth/token`. (No `Debug`: it holds a password.)
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TokenRequest {
    pub email: String,
    #[schema(format = Password)]
    pub password: String,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TokenResponse {
    /// JWT (HS256) the gateway accepts.
    pub access_token: String,
    #[schema(example = "Bearer")]
    pub token_type: &'static str,
    /// Seconds until the token expires.
    pub expires_in: u64,
}

fn name(field: &str, value: &str, errors: &mut Vec<FieldError>) -> String {
    let trimmed = value.trim();
    if trimmed.is_empty() {
        errors.push(FieldError::new(field, "must not be empty"));
    } else if trimmed.chars().count() > NAME_MAX_CHARS {
        errors.push(FieldError::new(
            field,
            format!("must be at most {NAME_MAX_CHARS} characters"),
        ));
    } else if trimmed.chars().any(char::is_control) {
        errors.push(FieldError::new(
            field,
            "must not contain control characters",
        ));
    }
    trimmed.to_owned()
}

/// Trimmed and lower-cased, the form stored and compared.
pub fn normalize_email(value: &str) -> String {
    value.trim().to_lowercase()
}

fn email(value: &str, errors: &mut Vec<FieldError>) -> String {
    let normalized = normalize_email(value);
    if normalized.chars().count() > EMAIL_MAX_CHARS {
        errors.push(FieldError::new(
            "email",
            format!("must be at most {EMAIL_MAX_CHARS} characters"),
        ));
    } else if !email_address::EmailAddress::is_valid(&normalized) || !normalized.contains('.') {
        errors.push(FieldError::new("email", "must be a valid e-mail address"));
    }
    normalized
}

fn password(value: &str, errors: &mut Vec<FieldError>) {
    let chars = value.chars().count();
    if !(PASSWORD_MIN_CHARS..=PASSWORD_MAX_CHARS).contains(&chars) {
        errors.push(FieldError::new(
            "password",
            format!("must be {PASSWORD_MIN_CHARS} to {PASSWORD_MAX_CHARS} characters"),
        ));
    }
}

impl CreateUser {
    pub fn validate(self) -> Result<NewUser, Vec<FieldError>> {
        let mut errors = Vec::new();
        let first_name = name("firstName", &self.first_name, &mut errors);
        let last_name = name("lastName", &self.last_name, &mut errors);
        let email = email(&self.email, &mut errors);
        password(&self.password, &mut errors);
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(NewUser {
            first_name,
            last_name,
            email,
            password: self.password,
            status: UserStatus::Active,
        })
    }
}

impl UpdateUser {
    pub fn validate(self) -> Result<UserChanges, Vec<FieldError>> {
        let mut errors = Vec::new();
        let first_name = self.first_name.map(|v| name("firstName", &v, &mut errors));
        let last_name = self.last_name.map(|v| name("lastName", &v, &mut errors));
        let email = self.email.map(|v| email(&v, &mut errors));
        if let Some(value) = &self.password {
            password(value, &mut errors);
        }
        if let Some(roles) = &self.roles {
            for (index, role) in roles.iter().enumerate() {
                // Roles travel space-separated in the gateway's identity header.
                if role.is_empty()
                    || role.len() > ROLE_MAX_CHARS
                    || !role.bytes().all(|b| b.is_ascii_graphic())
                {
                    errors.push(FieldError::new(
                        format!("roles[{index}]"),
                        format!("must be 1 to {ROLE_MAX_CHARS} visible ASCII characters"),
                    ));
                }
            }
        }
        let nothing = first_name.is_none()
            && last_name.is_none()
            && email.is_none()
            && self.password.is_none()
            && self.status.is_none()
            && self.roles.is_none();
        if nothing {
            errors.push(FieldError::new("body", "must change at least one field"));
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(UserChanges {
            first_name,
            last_name,
            email,
            password: self.password,
            status: self.status,
            roles: self.roles,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn create(email: &str, password: &str) -> CreateUser {
        CreateUser {
            first_name: " Ada ".into(),
            last_name: "Lovelace".into(),
            email: email.into(),
            password: password.into(),
        }
    }

    #[test]
    fn valid_create_is_normalised() {
        let user = create(" Ada@Example.COM ", "correct horse")
            .validate()
            .unwrap();
        assert_eq!(user.first_name, "Ada");
        assert_eq!(user.email, "ada@example.com");
        assert_eq!(user.status, UserStatus::Active);
    }

    #[test]
    fn invalid_fields_are_all_reported() {
        let mut request = create("not-an-email", "short");
        request.first_name = "   ".into();
        let errors = request.validate().err().unwrap();
        let fields: Vec<_> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["firstName", "email", "password"]);
    }

    #[test]
    fn empty_patch_is_rejected() {
        let patch = UpdateUser {
            first_name: None,
            last_name: None,
            email: None,
            password: None,
            status: None,
            roles: None,
        };
        assert_eq!(patch.validate().err().unwrap()[0].field, "body");
    }
}
