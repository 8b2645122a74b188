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
