//! `--about`: name, version, capabilities and settings, as JSON (for Meltano) or Markdown.

use serde_json::{json, Value};

use crate::config::CONFIG_SCHEMA;

/// Capabilities advertised to Meltano.
pub(crate) const CAPABILITIES: [&str; 8] = [
    "catalog",
    "discover",
    "state",
    "properties",
    "about",
    "batch",
    "activate-version",
    "log-based",
];

/// The `--about --format json` document.
pub(crate) fn about_json() -> Value {
    let settings: Value = serde_json::from_str(CONFIG_SCHEMA).unwrap_or(Value::Null);
    json!({
        "name": "tap-mysql",
        "description": env!("CARGO_PKG_DESCRIPTION"),
        "version": env!("CARGO_PKG_VERSION"),
        "capabilities": CAPABILITIES,
        "settings": settings,
    })
}

/// The `--about --format markdown` page: a settings table usable as documentation.
pub(crate) fn about_markdown() -> String {
    let doc = about_json();
    let mut out = format!(
        "# tap-mysql {}\n\n{}\n\n## Capabilities\n\n",
        env!("CARGO_PKG_VERSION"),
        env!("CARGO_PKG_DESCRIPTION")
    );
    for c in CAPABILITIES {
        out.push_str(&format!("* `{c}`\n"));
    }
    out.push_str("\n## Settings\n\n");
    out.push_str(&settings_table(&doc["settings"]));
    out.push_str(
        "\nEvery setting can also be given as an environment variable `TAP_MYSQL_<SETTING>` \
         (upper case), which overrides the config files.\n",
    );
    out
}

/// A Markdown table of the settings in a config JSON Schema.
pub fn settings_table(schema: &Value) -> String {
    let required: Vec<&str> = schema["required"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let mut out = String::from(
        "| Setting | Required | Type | Default | Description |\n|---|---|---|---|---|\n",
    );
    if let Some(props) = schema["properties"].as_object() {
        for (name, spec) in props {
            let ty = match &spec["type"] {
                Value::String(s) => s.clone(),
                Value::Array(a) => a
                    .iter()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join(" or "),
                _ => String::new(),
            };
            let default = match &spec["default"] {
                Value::Null => String::new(),
                v => format!("`{v}`"),
            };
            let mut desc = spec["description"].as_str().unwrap_or("").to_string();
            if let Some(values) = spec["enum"].as_array() {
                let v: Vec<String> = values.iter().map(|v| format!("`{v}`")).collect();
                desc.push_str(&format!(" One of {}.", v.join(", ")));
            }
            if spec["secret"].as_bool() == Some(true) {
                desc.push_str(" (secret)");
            }
            out.push_str(&format!(
                "| `{name}` | {} | {ty} | {default} | {} |\n",
                if required.contains(&name.as_str()) {
                    "yes"
                } else {
                    ""
                },
                desc.replace('|', "\\|")
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_json_document_carries_the_config_schema() {
        let doc = about_json();
        assert_eq!(doc["name"], "tap-mysql");
        assert_eq!(doc["version"], env!("CARGO_PKG_VERSION"));
        assert_eq!(doc["description"], env!("CARGO_PKG_DESCRIPTION"));
        assert_eq!(doc["capabilities"], json!(CAPABILITIES));
        let schema: Value = serde_json::from_str(CONFIG_SCHEMA).unwrap();
        assert_eq!(doc["settings"], schema);
        assert!(doc["settings"]["properties"]["host"].is_object());
    }

    #[test]
    fn settings_table_rows() {
        let schema = json!({
            "required": ["host"],
            "properties": {
                "host": {"type": "string", "default": "localhost", "description": "Host."},
                "ssl": {"type": ["boolean", "string"], "default": false, "description": "TLS."},
                "mode": {"type": "string", "enum": ["a", "b"], "description": "Mode."},
                "password": {"type": "string", "secret": true, "description": "a|b"},
                "bare": {}
            }
        });
        assert_eq!(
            settings_table(&schema),
            "| Setting | Required | Type | Default | Description |\n\
             |---|---|---|---|---|\n\
             | `host` | yes | string | `\"localhost\"` | Host. |\n\
             | `ssl` |  | boolean or string | `false` | TLS. |\n\
             | `mode` |  | string |  | Mode. One of `\"a\"`, `\"b\"`. |\n\
             | `password` |  | string |  | a\\|b (secret) |\n\
             | `bare` |  |  |  |  |\n"
        );
        assert_eq!(
            settings_table(&json!({})),
            "| Setting | Required | Type | Default | Description |\n|---|---|---|---|---|\n"
        );
    }

    #[test]
    fn the_markdown_page_lists_capabilities_and_every_setting() {
        let md = about_markdown();
        assert!(md.starts_with(&format!("# tap-mysql {}\n\n", env!("CARGO_PKG_VERSION"))));
        for c in CAPABILITIES {
            assert!(md.contains(&format!("* `{c}`\n")), "{c}");
        }
        let schema: Value = serde_json::from_str(CONFIG_SCHEMA).unwrap();
        for name in schema["properties"].as_object().unwrap().keys() {
            assert!(md.contains(&format!("| `{name}` |")), "{name}");
        }
        assert!(md.contains("| `password` |"));
        assert!(md.contains("(secret)"));
        assert!(md.ends_with("which overrides the config files.\n"));
    }
}
