//! Values of generated secrets. Rendering stays pure: the caller decides whether passwords are
//! redacted (display), freshly generated (`--show-secrets`, first apply) or the ones already in
//! the cluster (re-apply: generated once, never rotated).

use std::cell::RefCell;
use std::collections::BTreeMap;

use rand::Rng;
use rand::distr::Alphanumeric;

/// Shown instead of a generated value.
pub const REDACTED: &str = "REDACTED";

/// Supplies the value of a generated key of a Secret.
pub trait SecretValues {
    /// Value for `key` of Secret `secret`; the same pair must give the same value within one render.
    fn value(&self, secret: &str, key: &str) -> String;
    /// Whether values are real (safe to apply) rather than redacted.
    fn is_real(&self) -> bool;
}

/// Every generated value is [`REDACTED`]: what `render` and `plan` print by default.
#[derive(Debug, Default, Clone, Copy)]
pub struct Redacted;

impl SecretValues for Redacted {
    fn value(&self, _secret: &str, _key: &str) -> String {
        REDACTED.to_string()
    }

    fn is_real(&self) -> bool {
        false
    }
}

/// Values known already (read from the cluster) win; missing ones are generated randomly once.
#[derive(Debug, Default)]
pub struct Generated {
    known: BTreeMap<(String, String), String>,
    generated: RefCell<BTreeMap<(String, String), String>>,
}

impl Generated {
    /// Generate every value.
    pub fn new() -> Self {
        Self::default()
    }

    /// Reuse `known` values (secret, key) -> value, generating only the rest.
    pub fn with_known(known: BTreeMap<(String, String), String>) -> Self {
        Self {
            known,
            generated: RefCell::default(),
        }
    }
}

impl SecretValues for Generated {
    fn value(&self, secret: &str, key: &str) -> String {
        let id = (secret.to_string(), key.to_string());
        if let Some(v) = self.known.get(&id) {
            return v.clone();
        }
        self.generated
            .borrow_mut()
            .entry(id)
            .or_insert_with(|| {
                // 32 alphanumerics: ~190 bits, and safe inside URLs and shell arguments.
                rand::rng()
                    .sample_iter(&Alphanumeric)
                    .take(32)
                    .map(char::from)
                    .collect()
            })
            .clone()
    }

    fn is_real(&self) -> bool {
        true
    }
}
