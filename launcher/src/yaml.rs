//! A small YAML writer for the manifests `watercooler deploy k8s`
//! renders: block style, keys sorted (serde_json's map), strings plain when
//! they cannot be read as anything else and double-quoted (JSON escapes,
//! which YAML reads the same) otherwise. Every document is built as a
//! [`serde_json::Value`], so what is written is exactly what the tests
//! read back.

use serde_json::Value;

/// `docs` as one YAML stream, `---` before each document.
pub fn stream(docs: &[Value]) -> String {
    let mut out = String::new();
    for doc in docs {
        out.push_str("---\n");
        block(doc, 0, &mut out);
    }
    out
}

/// Whether `s` can be written unquoted and read back as the same string.
fn plain(s: &str) -> bool {
    let Some(first) = s.chars().next() else {
        return false;
    };
    let reserved = [
        "true", "false", "yes", "no", "on", "off", "null", "y", "n", "~",
    ];
    (first.is_ascii_alphabetic() || first == '/')
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '/' | '-'))
        && !reserved.iter().any(|r| s.eq_ignore_ascii_case(r))
}

fn scalar(value: &Value) -> String {
    match value {
        Value::String(s) if plain(s) => s.clone(),
        // A JSON string is a YAML double-quoted scalar with the same escapes.
        other => other.to_string(),
    }
}

fn key(k: &str) -> String {
    if plain(k) {
        k.to_owned()
    } else {
        Value::String(k.to_owned()).to_string()
    }
}

fn is_collection(value: &Value) -> bool {
    match value {
        Value::Object(map) => !map.is_empty(),
        Value::Array(list) => !list.is_empty(),
        _ => false,
    }
}

fn inline(value: &Value) -> String {
    match value {
        Value::Object(_) => "{}".to_owned(),
        Value::Array(_) => "[]".to_owned(),
        other => scalar(other),
    }
}

/// Writes `value` as a block at `indent` spaces.
fn block(value: &Value, indent: usize, out: &mut String) {
    let pad = " ".repeat(indent);
    match value {
        Value::Object(map) if !map.is_empty() => {
            for (k, v) in map {
                if is_collection(v) {
                    out.push_str(&format!("{pad}{}:\n", key(k)));
                    block(v, indent + 2, out);
                } else {
                    out.push_str(&format!("{pad}{}: {}\n", key(k), inline(v)));
                }
            }
        }
        Value::Array(list) if !list.is_empty() => {
            for item in list {
                if is_collection(item) {
                    // The item as a block two further in, its first line's
                    // indentation turned into the dash.
                    let mut inner = String::new();
                    block(item, indent + 2, &mut inner);
                    out.push_str(&pad);
                    out.push_str("- ");
                    out.push_str(&inner[indent + 2..]);
                } else {
                    out.push_str(&format!("{pad}- {}\n", inline(item)));
                }
            }
        }
        other => out.push_str(&format!("{pad}{}\n", inline(other))),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::stream;

    #[test]
    fn blocks_lists_and_quoting() {
        let doc = json!({
            "kind": "Pod",
            "metadata": {"name": "a-1", "labels": {"app.kubernetes.io/name": "x"}},
            "spec": {
                "args": ["--listen", "0.0.0.0:8080", "$(POD_NAME)", "yes", "", "12"],
                "ports": [{"containerPort": 8080, "name": "http"}],
                "empty": {},
                "none": [],
                "flag": true,
                "nested": [["a"]],
            },
        });
        let text = stream(&[doc]);
        assert_eq!(
            text,
            "---\nkind: Pod\nmetadata:\n  labels:\n    app.kubernetes.io/name: x\n  name: a-1\nspec:\n  args:\n    - \"--listen\"\n    - \"0.0.0.0:8080\"\n    - \"$(POD_NAME)\"\n    - \"yes\"\n    - \"\"\n    - \"12\"\n  empty: {}\n  flag: true\n  nested:\n    - - a\n  none: []\n  ports:\n    - containerPort: 8080\n      name: http\n"
        );
    }
}
