//! Reading a bookmark object key by key: each known key is taken out with the type it must
//! have (a JSON `null` counts as absent), and what is left are the keys this tap does not know.

use serde_json::{Map, Value};

/// The keys of a bookmark object not taken yet.
pub(super) struct Fields(Map<String, Value>);

impl Fields {
    /// Starts reading `map`.
    pub(super) fn new(map: Map<String, Value>) -> Fields {
        Fields(map)
    }

    /// The keys nobody took, in their order.
    pub(super) fn rest(self) -> Map<String, Value> {
        self.0
    }

    /// Takes `key` whatever its value, `null` included.
    pub(super) fn any(&mut self, key: &str) -> Option<Value> {
        self.0.shift_remove(key)
    }

    /// Takes `key`; `null` is absent.
    fn take(&mut self, key: &str) -> Option<Value> {
        self.any(key).filter(|v| !v.is_null())
    }

    /// Takes a non-negative integer.
    pub(super) fn u64(&mut self, key: &str) -> Result<Option<u64>, String> {
        self.take(key)
            .map(|v| {
                v.as_u64()
                    .ok_or_else(|| wrong(key, "a non-negative integer", &v))
            })
            .transpose()
    }

    /// Takes a boolean.
    pub(super) fn bool(&mut self, key: &str) -> Result<Option<bool>, String> {
        self.take(key)
            .map(|v| v.as_bool().ok_or_else(|| wrong(key, "true or false", &v)))
            .transpose()
    }

    /// Takes a string.
    pub(super) fn string(&mut self, key: &str) -> Result<Option<String>, String> {
        self.take(key)
            .map(|v| match v {
                Value::String(s) => Ok(s),
                other => Err(wrong(key, "a string", &other)),
            })
            .transpose()
    }

    /// Takes an object.
    pub(super) fn object(&mut self, key: &str) -> Result<Option<Map<String, Value>>, String> {
        self.take(key)
            .map(|v| match v {
                Value::Object(m) => Ok(m),
                other => Err(wrong(key, "an object", &other)),
            })
            .transpose()
    }

    /// Takes an array.
    pub(super) fn array(&mut self, key: &str) -> Result<Option<Vec<Value>>, String> {
        self.take(key)
            .map(|v| match v {
                Value::Array(a) => Ok(a),
                other => Err(wrong(key, "an array", &other)),
            })
            .transpose()
    }

    /// Takes an array of strings.
    pub(super) fn strings(&mut self, key: &str) -> Result<Option<Vec<String>>, String> {
        let Some(items) = self.array(key)? else {
            return Ok(None);
        };
        items
            .into_iter()
            .map(|v| match v {
                Value::String(s) => Ok(s),
                other => Err(wrong(key, "an array of strings", &other)),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some)
    }
}

/// The message for a key whose value has the wrong type (the value shortened).
pub(super) fn wrong(key: &str, want: &str, got: &Value) -> String {
    let mut text = got.to_string();
    if text.chars().count() > 60 {
        text = text.chars().take(57).collect::<String>() + "...";
    }
    format!("bookmark key '{key}' must be {want}, not {text}")
}
