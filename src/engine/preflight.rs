//! Secrets the user provides (the HS256 key, the first administrator, the TLS certificate) are
//! checked before anything is written: without them the gateway and users pods would sit in
//! CreateContainerConfigError (and the Ingress would serve a default certificate) while the
//! platform looked applied. Each missing one is reported with the command that creates it.

use serde_json::Value;

use super::{Error, Result};
use crate::api::{PantheraPlatform, ServiceKind};

/// A Secret the platform reads but never writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Required {
    pub name: String,
    pub keys: Vec<String>,
    /// What it is for, as the message says it.
    pub purpose: &'static str,
    /// The command that creates it, placeholders in angle brackets.
    pub command: String,
}

/// Every user-provided Secret `platform` names, in spec order.
pub fn required(platform: &PantheraPlatform) -> Vec<Required> {
    let namespace = platform.metadata.namespace.as_deref().unwrap_or("default");
    let spec = &platform.spec;
    let mut out: Vec<Required> = Vec::new();
    let mut add = |required: Required| {
        // One Secret may hold several keys (e.g. the HS256 key next to other keys).
        match out.iter_mut().find(|r| r.name == required.name) {
            Some(existing) => {
                for key in required.keys {
                    if !existing.keys.contains(&key) {
                        existing.keys.push(key);
                    }
                }
            }
            None => out.push(required),
        }
    };
    if let Some(gateway) = &spec.gateway {
        if let Some(r) = gateway
            .auth
            .as_ref()
            .and_then(|auth| auth.jwt.hs256_secret_ref.as_ref())
        {
            add(Required {
                name: r.name.clone(),
                keys: vec![r.key.clone()],
                purpose: "the gateway's HS256 token key",
                command: format!(
                    "kubectl -n {namespace} create secret generic {} --from-literal={}=\"$(openssl rand -base64 48)\"",
                    r.name, r.key
                ),
            });
        }
        if let Some(tls) = &gateway.tls {
            add(Required {
                name: tls.secret_name.clone(),
                keys: vec!["tls.crt".into(), "tls.key".into()],
                purpose: "the gateway's TLS certificate",
                command: format!(
                    "kubectl -n {namespace} create secret tls {} --cert=<tls.crt> --key=<tls.key>",
                    tls.secret_name
                ),
            });
        }
    }
    for service in &spec.services {
        if let (ServiceKind::Users, Some(name)) = (service.kind, &service.admin_secret) {
            add(Required {
                name: name.clone(),
                keys: vec!["email".into(), "password".into()],
                purpose: "the first administrator",
                command: format!(
                    "kubectl -n {namespace} create secret generic {name} --from-literal=email=<admin e-mail> --from-literal=password=<8 to 128 characters>"
                ),
            });
        }
    }
    out
}

/// What is wrong with one required Secret, given what the cluster has (`None`: absent). The
/// Secret is the JSON object the API server answered (`data` values base64).
fn problem(required: &Required, secret: Option<&Value>) -> Option<String> {
    let Some(secret) = secret else {
        return Some(format!(
            "Secret {} ({}) does not exist; create it with:\n    {}",
            required.name, required.purpose, required.command
        ));
    };
    let has = |key: &str| {
        ["data", "stringData"].iter().any(|field| {
            secret
                .get(field)
                .and_then(|data| data.get(key))
                .and_then(Value::as_str)
                .is_some_and(|value| !value.is_empty())
        })
    };
    let missing: Vec<&str> = required
        .keys
        .iter()
        .map(String::as_str)
        .filter(|key| !has(key))
        .collect();
    (!missing.is_empty()).then(|| {
        format!(
            "Secret {} ({}) has no (or an empty) key {}; recreate it with:\n    kubectl -n {} delete secret {}\n    {}",
            required.name,
            required.purpose,
            missing.join(", "),
            secret
                .pointer("/metadata/namespace")
                .and_then(Value::as_str)
                .unwrap_or("default"),
            required.name,
            required.command
        )
    })
}

/// Fails with every missing Secret or key, and how to create it, when any is missing.
/// `secret` looks a Secret of the platform's namespace up in what the engine already listed
/// (the operator's RBAC lists Secrets but deliberately never gets single ones).
pub(super) fn check<'a>(
    platform: &PantheraPlatform,
    secret: impl Fn(&str) -> Option<&'a Value>,
) -> Result<()> {
    let namespace = platform.metadata.namespace.as_deref().unwrap_or("default");
    let problems: Vec<String> = required(platform)
        .iter()
        .filter_map(|r| problem(r, secret(&r.name)))
        .collect();
    if problems.is_empty() {
        Ok(())
    } else {
        Err(Error::MissingSecrets(format!(
            "nothing was applied: {} of the platform's Secrets {} missing (create the namespace first if needed: kubectl create namespace {namespace})\n  {}",
            problems.len(),
            if problems.len() == 1 { "is" } else { "are" },
            problems.join("\n  ")
        )))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn shop() -> PantheraPlatform {
        let text =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/shop.yaml"))
                .unwrap();
        serde_yaml::from_str(&text).unwrap()
    }

    #[test]
    fn the_shop_needs_its_jwt_key_tls_certificate_and_first_admin() {
        let required = required(&shop());
        let names: Vec<(&str, Vec<&str>)> = required
            .iter()
            .map(|r| (r.name.as_str(), r.keys.iter().map(String::as_str).collect()))
            .collect();
        assert_eq!(
            names,
            [
                ("shop-jwt", vec!["secret"]),
                ("shop-api-tls", vec!["tls.crt", "tls.key"]),
                ("shop-admin", vec!["email", "password"]),
            ]
        );
        assert!(
            required[0].command.starts_with(
                "kubectl -n shop create secret generic shop-jwt --from-literal=secret="
            )
        );
        assert!(
            required[1]
                .command
                .contains("create secret tls shop-api-tls")
        );
    }

    #[test]
    fn absent_secrets_and_empty_keys_are_problems() {
        let required = required(&shop()).remove(0);
        let absent = problem(&required, None).unwrap();
        assert!(absent.contains("shop-jwt"), "{absent}");
        assert!(absent.contains(&required.command), "{absent}");
        let mut secret = json!({"metadata": {"namespace": "shop"}, "data": {"secret": ""}});
        let empty = problem(&required, Some(&secret)).unwrap();
        assert!(empty.contains("no (or an empty) key secret"), "{empty}");
        secret["data"]["secret"] = json!("aw==");
        assert_eq!(problem(&required, Some(&secret)), None);
    }
}
