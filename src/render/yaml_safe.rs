//! The `json_encode` filter the templates use, made safe for YAML.
//!
//! Templates splice values into YAML as JSON (every JSON document is a YAML flow node). That
//! holds only for characters YAML accepts in a stream: JSON lets DEL, the C1 controls and a few
//! non-characters through raw, and YAML parsers (ours and the API server's) reject them. A user's
//! env value or JWT issuer may hold any of them, so they are escaped as `\uXXXX`, which JSON and
//! YAML read back as the same character.

use std::collections::HashMap;

use serde_json::Value;

/// Tera filter: `value | json_encode(pretty=false)`, same arguments as tera's built-in.
pub fn json_encode(value: &Value, args: &HashMap<String, Value>) -> tera::Result<Value> {
    let pretty = args.get("pretty").and_then(Value::as_bool).unwrap_or(false);
    let json = if pretty {
        serde_json::to_string_pretty(value)
    } else {
        serde_json::to_string(value)
    }
    .map_err(tera::Error::json)?;
    Ok(Value::String(escape_non_printable(json)))
}

/// Characters outside YAML's printable set that JSON emits raw. JSON already escapes C0 controls.
fn is_non_printable(c: char) -> bool {
    matches!(
        c,
        '\u{7f}'..='\u{9f}' | '\u{feff}' | '\u{fffe}' | '\u{ffff}'
    )
}

/// Such characters can only sit inside JSON string literals (the syntax is plain ASCII), where
/// `\uXXXX` stands for the same character.
fn escape_non_printable(json: String) -> String {
    if !json.chars().any(is_non_printable) {
        return json;
    }
    let mut out = String::with_capacity(json.len() + 16);
    for c in json.chars() {
        if is_non_printable(c) {
            out.push_str(&format!("\\u{:04x}", u32::from(c)));
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(value: Value) -> String {
        match json_encode(&value, &HashMap::new()) {
            Ok(Value::String(s)) => s,
            other => panic!("json_encode returned {other:?}"),
        }
    }

    #[test]
    fn characters_yaml_rejects_are_escaped_and_read_back_unchanged() {
        let raw = "a\u{7f}b\u{85}c\u{9f}d\u{feff}e\u{ffff}f\u{1}g é 🐆";
        let encoded = encode(Value::String(raw.to_string()));
        assert!(!encoded.chars().any(is_non_printable), "{encoded:?}");
        let from_yaml: String = serde_yaml::from_str(&encoded).expect("YAML reads the encoding");
        let from_json: String = serde_json::from_str(&encoded).expect("JSON reads the encoding");
        assert_eq!(from_yaml, raw);
        assert_eq!(from_json, raw);
    }

    #[test]
    fn printable_values_encode_as_tera_does() {
        let value = serde_json::json!({"name": "RUST_LOG", "value": "info,x=debug", "n": [1, 2.5]});
        assert_eq!(
            encode(value.clone()),
            serde_json::to_string(&value).expect("json")
        );
    }
}
