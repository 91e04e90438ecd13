//! Command line flags and the environment variables of `docs/contracts.md`.

use panthera_kit::Secret;
use panthera_kit::config::CommonConfig;

#[derive(Debug, Clone, clap::Parser)]
#[command(
    name = "panthera-users",
    version,
    about = "Panthera user management API"
)]
pub struct Config {
    #[command(flatten)]
    pub common: CommonConfig,
    #[command(flatten)]
    pub jwt: JwtConfig,
    #[command(flatten)]
    pub admin: AdminConfig,
}

/// The first administrator, from the platform's admin Secret; created once if absent.
#[derive(Debug, Clone, clap::Args)]
pub struct AdminConfig {
    #[arg(long = "admin-email", env = "ADMIN_EMAIL")]
    pub email: Option<String>,
    #[arg(
        long = "admin-password",
        env = "ADMIN_PASSWORD",
        hide_env_values = true
    )]
    pub password: Option<Secret>,
}

/// Token issuing; the values match the gateway's `auth.jwt` settings.
#[derive(Debug, Clone, clap::Args)]
pub struct JwtConfig {
    /// HS256 signing key shared with the gateway; `/v1/auth/token` answers 503 without it.
    #[arg(
        long = "jwt-hs256-secret",
        env = "JWT_HS256_SECRET",
        hide_env_values = true
    )]
    pub hs256_secret: Option<Secret>,
    /// `iss` claim; the gateway's `auth.jwt.issuer`.
    #[arg(long = "jwt-issuer", env = "JWT_ISSUER")]
    pub issuer: Option<String>,
    /// `aud` claim; the first of the gateway's `auth.jwt.audiences`.
    #[arg(long = "jwt-audience", env = "JWT_AUDIENCE")]
    pub audience: Option<String>,
    /// Lifetime of issued tokens.
    #[arg(
        long = "jwt-ttl-seconds",
        env = "JWT_TTL_SECONDS",
        default_value_t = 900
    )]
    pub ttl_seconds: u64,
}
