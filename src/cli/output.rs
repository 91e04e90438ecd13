//! Output formats shared by the verbs.

use clap::ValueEnum;
use serde_json::Value;

/// `-o` of the verbs that print objects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum Format {
    #[default]
    Yaml,
    Json,
}

/// Objects as a YAML stream (`---` separated) or a JSON `List`, like kubectl.
pub fn objects(values: &[&Value], format: Format) -> Result<String, String> {
    match format {
        Format::Yaml => {
            let mut text = String::new();
            for (i, v) in values.iter().enumerate() {
                if i > 0 {
                    text.push_str("---\n");
                }
                text.push_str(&serde_yaml::to_string(v).map_err(|e| e.to_string())?);
            }
            Ok(text)
        }
        Format::Json => {
            let list = serde_json::json!({"apiVersion": "v1", "kind": "List", "items": values});
            let mut text = serde_json::to_string_pretty(&list).map_err(|e| e.to_string())?;
            text.push('\n');
            Ok(text)
        }
    }
}
