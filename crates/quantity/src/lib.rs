//! Kubernetes resource quantities in the API server's canonical form.
//!
//! The API server parses every `resource.Quantity` and stores it re-printed: `1000m` becomes
//! `1`, `0.5` becomes `500m`, `1024Mi` becomes `1Gi`. An object sent with the other spelling
//! never compares equal to what the server gives back, so every apply would patch it again and
//! `plan --exit-code` would never come back clean. Panthera's renderer therefore writes
//! quantities the way the server prints them (the rules of
//! `k8s.io/apimachinery/pkg/api/resource`: `Quantity.CanonicalizeBytes`), and what is applied
//! is exactly what is stored; kube-sim stores them the same way, as the real server does.

use serde_json::Value;

/// A quantity's notation, which the canonical form keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    /// `Ki`, `Mi`, ... (powers of 1024).
    BinarySi,
    /// `n`, `u`, `m`, `k`, `M`, ... or no suffix (powers of 1000).
    DecimalSi,
    /// `1e3`, `5E-3`.
    DecimalExponent,
}

/// A parsed quantity: `mantissa * 10^scale`, and its notation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Quantity {
    mantissa: i128,
    scale: i32,
    format: Format,
}

const DECIMAL_SUFFIXES: &[(&str, i32)] = &[
    ("n", -9),
    ("u", -6),
    ("m", -3),
    ("", 0),
    ("k", 3),
    ("M", 6),
    ("G", 9),
    ("T", 12),
    ("P", 15),
    ("E", 18),
];
const BINARY_SUFFIXES: &[&str] = &["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"];
/// The server keeps nine decimal places (nano) and rounds anything finer up.
const NANO: i32 = -9;
/// Digits beyond this are left to the server (they never occur in a resource amount).
const MAX_DIGITS: usize = 24;

/// The canonical spelling of `text`, or `None` when it is not a quantity (left for the server
/// to reject with its own message).
pub fn canonical(text: &str) -> Option<String> {
    parse(text).map(format)
}

/// Rewrite the quantities of an object in canonical form: every value under a
/// `resources.requests` / `resources.limits` map (containers, claims and claim templates) and
/// `sizeLimit` (emptyDir volumes).
pub fn canonicalize_object(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for (key, child) in map.iter_mut() {
                match key.as_str() {
                    "resources" => {
                        if let Value::Object(resources) = child {
                            for (kind, amounts) in resources.iter_mut() {
                                if kind == "requests" || kind == "limits" {
                                    canonicalize_values(amounts);
                                } else {
                                    canonicalize_object(amounts);
                                }
                            }
                        }
                    }
                    "sizeLimit" => canonicalize_string(child),
                    _ => canonicalize_object(child),
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(canonicalize_object),
        _ => {}
    }
}

fn canonicalize_values(amounts: &mut Value) {
    if let Value::Object(map) = amounts {
        map.values_mut().for_each(canonicalize_string);
    }
}

fn canonicalize_string(v: &mut Value) {
    let canonical = match v {
        Value::String(s) => canonical(s),
        // A bare YAML number (`cpu: 1`) is a quantity too; the server answers with a string.
        Value::Number(n) => canonical(&n.to_string()),
        _ => None,
    };
    if let Some(c) = canonical {
        *v = Value::String(c);
    }
}

fn parse(text: &str) -> Option<Quantity> {
    let (negative, rest) = match text.as_bytes().first()? {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    let number_end = rest
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(rest.len());
    let (number, suffix) = rest.split_at(number_end);
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    if whole.is_empty() && fraction.is_empty() || number.matches('.').count() > 1 {
        return None;
    }
    if whole.len() + fraction.len() > MAX_DIGITS {
        return None;
    }
    let digits: i128 = format!("{whole}{fraction}").parse().ok()?;
    let mut scale = -i32::try_from(fraction.len()).ok()?;
    let (mut mantissa, format) = if let Some(power) = BINARY_SUFFIXES
        .iter()
        .position(|s| !s.is_empty() && *s == suffix)
    {
        let factor = 1024_i128.checked_pow(u32::try_from(power).ok()?)?;
        (digits.checked_mul(factor)?, Format::BinarySi)
    } else if let Some((_, exponent)) = DECIMAL_SUFFIXES.iter().find(|(s, _)| *s == suffix) {
        scale += exponent;
        (digits, Format::DecimalSi)
    } else if let Some(exponent) = suffix.strip_prefix(['e', 'E']) {
        let exponent: i32 = exponent.parse().ok()?;
        if exponent.abs() > 100 {
            return None;
        }
        scale += exponent;
        (digits, Format::DecimalExponent)
    } else {
        return None;
    };
    // Round up (away from zero) to nano precision, as the server does.
    if scale < NANO {
        let divisor = 10_i128.checked_pow(u32::try_from(NANO - scale).ok()?)?;
        let rounded_up = mantissa % divisor != 0;
        mantissa = mantissa / divisor + i128::from(rounded_up);
        scale = NANO;
    }
    if negative {
        mantissa = -mantissa;
    }
    Some(Quantity {
        mantissa,
        scale,
        format,
    })
}

fn format(q: Quantity) -> String {
    if q.mantissa == 0 {
        return "0".into();
    }
    if q.format == Format::BinarySi
        && let Some(bytes) = integer_value(q)
        && bytes.abs() >= 1024
    {
        let (mut amount, mut power) = (bytes, 0);
        while power < BINARY_SUFFIXES.len() - 1 && amount % 1024 == 0 {
            amount /= 1024;
            power += 1;
        }
        return format!("{amount}{}", BINARY_SUFFIXES[power]);
    }
    // Below 1Ki, or not a whole number of bytes: the server prints it in decimal SI.
    let format = match q.format {
        Format::BinarySi => Format::DecimalSi,
        other => other,
    };
    let (mut amount, mut exponent) = (q.mantissa, q.scale);
    while amount % 10 == 0 {
        amount /= 10;
        exponent += 1;
    }
    // The exponent goes down to a multiple of three (`1.5` is `1500m`, not `15e-1`).
    let extra = exponent.rem_euclid(3);
    amount *= 10_i128.pow(extra.unsigned_abs());
    exponent -= extra;
    let suffix = match format {
        Format::DecimalSi => DECIMAL_SUFFIXES
            .iter()
            .find(|(_, e)| *e == exponent)
            .map(|(s, _)| (*s).to_string())
            .unwrap_or_else(|| format!("e{exponent}")),
        _ if exponent == 0 => String::new(),
        _ => format!("e{exponent}"),
    };
    format!("{amount}{suffix}")
}

/// The value as a whole number, if it is one.
fn integer_value(q: Quantity) -> Option<i128> {
    if q.scale >= 0 {
        q.mantissa
            .checked_mul(10_i128.checked_pow(q.scale.unsigned_abs())?)
    } else {
        let divisor = 10_i128.checked_pow(q.scale.unsigned_abs())?;
        (q.mantissa % divisor == 0).then_some(q.mantissa / divisor)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// Each pair is what kube-apiserver 1.35 stored for what it was sent (checked against the
    /// real server by Panthera's `tests/real_cluster.rs` and kube-sim's differential suite).
    #[test]
    fn matches_the_api_servers_canonical_form() {
        for (sent, stored) in [
            ("1000m", "1"),
            ("0.5", "500m"),
            ("1024Mi", "1Gi"),
            ("250m", "250m"),
            ("1", "1"),
            ("1.5", "1500m"),
            ("1500m", "1500m"),
            ("2000", "2k"),
            ("2000m", "2"),
            ("100M", "100M"),
            ("1000k", "1M"),
            ("1536Mi", "1536Mi"),
            ("1.5Gi", "1536Mi"),
            ("0.5Gi", "512Mi"),
            ("512", "512"),
            ("1024", "1024"),
            ("1Ki", "1Ki"),
            ("0.5Ki", "512"),
            ("0.3Ki", "307200m"),
            ("10Gi", "10Gi"),
            ("20480Mi", "20Gi"),
            ("1e3", "1e3"),
            ("12e2", "1200"),
            ("1E-3", "1e-3"),
            ("0.1n", "1n"),
            ("0", "0"),
            ("0Mi", "0"),
            ("+2", "2"),
            ("-1500m", "-1500m"),
            ("0.001", "1m"),
            ("1.0", "1"),
        ] {
            assert_eq!(canonical(sent).as_deref(), Some(stored), "{sent}");
        }
    }

    #[test]
    fn leaves_what_is_not_a_quantity() {
        for text in ["", "abc", "1x", "1.2.3", ".", "Mi", "1e", "1 Gi"] {
            assert_eq!(canonical(text), None, "{text}");
        }
    }

    #[test]
    fn rewrites_resources_claims_and_size_limits_only() {
        let mut deployment = json!({
            "kind": "Deployment",
            "spec": {"template": {"spec": {
                "containers": [{
                    "name": "app",
                    "env": [{"name": "CPU", "value": "1000m"}],
                    "resources": {"requests": {"cpu": "0.5", "memory": "1024Mi"}, "limits": {"cpu": 1}}
                }],
                "volumes": [{"name": "tmp", "emptyDir": {"sizeLimit": "1024Mi"}}]
            }},
            "volumeClaimTemplates": [{"spec": {"resources": {"requests": {"storage": "2048Mi"}}}}]
            }
        });
        canonicalize_object(&mut deployment);
        let c = &deployment["spec"]["template"]["spec"]["containers"][0];
        assert_eq!(c["resources"]["requests"]["cpu"], "500m");
        assert_eq!(c["resources"]["requests"]["memory"], "1Gi");
        assert_eq!(c["resources"]["limits"]["cpu"], "1");
        assert_eq!(
            c["env"][0]["value"], "1000m",
            "an env value is not a quantity"
        );
        assert_eq!(
            deployment["spec"]["template"]["spec"]["volumes"][0]["emptyDir"]["sizeLimit"],
            "1Gi"
        );
        assert_eq!(
            deployment["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"],
            "2Gi"
        );
    }
}
