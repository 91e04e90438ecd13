//! The shared keys: `IDENTITY_KEYS`, a comma-separated list whose first entry signs.

use std::fmt;

use hmac::{Hmac, Mac};
use sha2::Sha256;

pub(crate) type HmacSha256 = Hmac<Sha256>;

/// The variable that holds the keys in the gateway and in every service container (from the
/// Secret `{platform}-identity`, key `keys`).
pub const KEYS_ENV: &str = "IDENTITY_KEYS";
/// Shortest key accepted: 32 bytes, the HMAC-SHA256 block's half; Panthera generates 32
/// alphanumerics (~190 bits).
pub const MIN_KEY_BYTES: usize = 32;
/// More keys than a rotation needs (two) would only be forgotten ones.
pub const MAX_KEYS: usize = 8;

/// A key's id is derived from the key, so the list needs no names: an HMAC of this label under
/// the key, which says nothing about the key itself.
const KEY_ID_LABEL: &[u8] = b"panthera identity key id";
const KEY_ID_LEN: usize = 12;

/// Why a key list was refused. Entries are named by position, never by value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("no key is listed")]
    Empty,
    #[error("more than {MAX_KEYS} keys are listed")]
    TooMany,
    #[error("key {position} is shorter than {MIN_KEY_BYTES} bytes")]
    TooShort { position: usize },
    #[error("key {position} contains whitespace (keys are separated by commas)")]
    Whitespace { position: usize },
    #[error("key {position} is listed twice")]
    Duplicate { position: usize },
}

pub type Result<T, E = KeyError> = std::result::Result<T, E>;

/// A key's public name: 12 lower-case hex digits, sent in the signature header so a verifier
/// picks the right key at once.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct KeyId([u8; KEY_ID_LEN]);

impl KeyId {
    fn of(key: &HmacSha256) -> Self {
        let mut mac = key.clone();
        mac.update(KEY_ID_LABEL);
        let tag = mac.finalize().into_bytes();
        let mut id = [0u8; KEY_ID_LEN];
        for (pair, byte) in id.chunks_exact_mut(2).zip(tag.iter()) {
            pair[0] = HEX[usize::from(byte >> 4)];
            pair[1] = HEX[usize::from(byte & 0xf)];
        }
        Self(id)
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    pub fn as_str(&self) -> &str {
        // Built from HEX only.
        std::str::from_utf8(&self.0).unwrap_or("")
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

pub(crate) struct Key {
    pub(crate) id: KeyId,
    /// Keyed once (the key's inner and outer pads hashed); cloned for each MAC.
    pub(crate) mac: HmacSha256,
}

/// The keys of one process: the first signs, each verifies.
pub struct KeyRing {
    /// Never empty.
    keys: Box<[Key]>,
}

impl KeyRing {
    /// Parses `IDENTITY_KEYS`: keys separated by commas. Each key is used as it is written (its
    /// bytes), at least [`MIN_KEY_BYTES`] long; spaces and newlines around a key are ignored,
    /// as is an empty entry (a trailing comma or newline from a hand-edited Secret).
    pub fn parse(text: &str) -> Result<Self> {
        let mut keys: Vec<Key> = Vec::new();
        for (index, entry) in text
            .split(',')
            .map(str::trim)
            .filter(|e| !e.is_empty())
            .enumerate()
        {
            let position = index + 1;
            if keys.len() == MAX_KEYS {
                return Err(KeyError::TooMany);
            }
            if entry.chars().any(char::is_whitespace) {
                return Err(KeyError::Whitespace { position });
            }
            if entry.len() < MIN_KEY_BYTES {
                return Err(KeyError::TooShort { position });
            }
            // HMAC takes a key of any length; the length was checked above.
            let Ok(mac) = HmacSha256::new_from_slice(entry.as_bytes()) else {
                return Err(KeyError::TooShort { position });
            };
            let id = KeyId::of(&mac);
            if keys.iter().any(|key| key.id == id) {
                return Err(KeyError::Duplicate { position });
            }
            keys.push(Key { id, mac });
        }
        if keys.is_empty() {
            return Err(KeyError::Empty);
        }
        Ok(Self {
            keys: keys.into_boxed_slice(),
        })
    }

    /// The key that signs: the first listed.
    pub(crate) fn signing(&self) -> &Key {
        // `parse` refuses an empty list, and it is the only constructor.
        &self.keys[0]
    }

    pub(crate) fn find(&self, id: &[u8]) -> Option<&Key> {
        self.keys.iter().find(|key| key.id.as_bytes() == id)
    }

    /// The id of the signing key.
    pub fn signing_id(&self) -> KeyId {
        self.signing().id
    }

    /// The ids of every key, signing key first (for logs: they reveal nothing of the keys).
    pub fn ids(&self) -> impl Iterator<Item = KeyId> + '_ {
        self.keys.iter().map(|key| key.id)
    }
}

impl fmt::Debug for KeyRing {
    // Keys never print; their ids do.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyRing")
            .field("ids", &self.ids().collect::<Vec<_>>())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    const B: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

    #[test]
    fn parses_a_list_whose_first_key_signs() {
        let ring = KeyRing::parse(&format!(" {B},\n{A}\n")).unwrap();
        let single = KeyRing::parse(B).unwrap();
        assert_eq!(ring.signing_id(), single.signing_id());
        assert_eq!(ring.ids().count(), 2);
        assert!(
            ring.find(KeyRing::parse(A).unwrap().signing_id().as_bytes())
                .is_some()
        );
    }

    #[test]
    fn key_ids_are_stable_hex_and_reveal_nothing() {
        let ring = KeyRing::parse(A).unwrap();
        let id = ring.signing_id().to_string();
        assert_eq!(id.len(), 12);
        assert!(id.bytes().all(|b| HEX.contains(&b)), "{id}");
        // Pinned: a changed derivation would make old services reject a new gateway.
        assert_eq!(id, KeyRing::parse(A).unwrap().signing_id().to_string());
        assert_eq!(id, "1009ce1657a6");
        let debug = format!("{ring:?}");
        assert!(!debug.contains("aaaa"), "{debug}");
        assert!(debug.contains(&id), "{debug}");
    }

    fn nine_keys() -> String {
        (1..=9)
            .map(|i| format!("{A}{i}"))
            .collect::<Vec<_>>()
            .join(",")
    }

    #[test]
    fn bad_lists_are_refused_by_position_without_the_key() {
        let cases = [
            ("", KeyError::Empty),
            (" , \n", KeyError::Empty),
            ("short-key", KeyError::TooShort { position: 1 }),
            (&format!("{A},{A}"), KeyError::Duplicate { position: 2 }),
            (
                &format!("{A},{B} {A}"),
                KeyError::Whitespace { position: 2 },
            ),
            (&nine_keys(), KeyError::TooMany),
        ];
        for (text, expected) in cases {
            let Err(error) = KeyRing::parse(text) else {
                panic!("accepted {text:?}");
            };
            assert_eq!(error, expected, "{text:?}");
            assert!(!error.to_string().contains("aaaa"), "{error}");
        }
    }
}
