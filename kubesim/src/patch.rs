//! Patch formats: JSON merge patch (RFC 7386, also standing in for strategic
//! merge patch and server-side apply) and JSON patch (RFC 6902).

use serde_json::{Map, Value};

use crate::error::ApiError;

/// RFC 7386: objects merge key by key, `null` removes, anything else
/// replaces (lists included).
pub(crate) fn merge(target: &mut Value, patch: &Value) {
    let Value::Object(patch) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let Value::Object(target) = target else {
        return;
    };
    for (key, value) in patch {
        if value.is_null() {
            target.remove(key);
        } else {
            merge(target.entry(key.clone()).or_insert(Value::Null), value);
        }
    }
}

fn unescape(token: &str) -> String {
    token.replace("~1", "/").replace("~0", "~")
}

/// Splits a JSON pointer into its parent pointer and last token.
fn split(path: &str) -> Result<(String, String), ApiError> {
    if path.is_empty() {
        return Err(ApiError::bad_request(
            "the root cannot be the target of this operation",
        ));
    }
    let (parent, last) = path
        .rsplit_once('/')
        .ok_or_else(|| ApiError::bad_request(format!("invalid JSON pointer {path:?}")))?;
    Ok((parent.to_string(), unescape(last)))
}

fn missing(path: &str) -> ApiError {
    ApiError::invalid("JSONPatch", "", path, "path does not exist")
}

fn array_index(token: &str, len: usize, inserting: bool) -> Result<usize, ApiError> {
    if inserting && token == "-" {
        return Ok(len);
    }
    let index: usize = token
        .parse()
        .map_err(|_| ApiError::bad_request(format!("invalid array index {token:?}")))?;
    let limit = if inserting {
        len
    } else {
        len.saturating_sub(1)
    };
    if index > limit || (!inserting && len == 0) {
        return Err(ApiError::bad_request(format!(
            "array index {index} out of bounds"
        )));
    }
    Ok(index)
}

fn add(doc: &mut Value, path: &str, value: Value) -> Result<(), ApiError> {
    if path.is_empty() {
        *doc = value;
        return Ok(());
    }
    let (parent, last) = split(path)?;
    match doc.pointer_mut(&parent).ok_or_else(|| missing(&parent))? {
        Value::Object(map) => {
            map.insert(last, value);
        }
        Value::Array(items) => {
            let index = array_index(&last, items.len(), true)?;
            items.insert(index, value);
        }
        _ => return Err(missing(path)),
    }
    Ok(())
}

fn remove(doc: &mut Value, path: &str) -> Result<Value, ApiError> {
    let (parent, last) = split(path)?;
    match doc.pointer_mut(&parent).ok_or_else(|| missing(&parent))? {
        Value::Object(map) => map.remove(&last).ok_or_else(|| missing(path)),
        Value::Array(items) => {
            let index = array_index(&last, items.len(), false)?;
            Ok(items.remove(index))
        }
        _ => Err(missing(path)),
    }
}

fn str_field<'a>(op: &'a Value, field: &str) -> Result<&'a str, ApiError> {
    op[field]
        .as_str()
        .ok_or_else(|| ApiError::bad_request(format!("JSON patch operation needs {field:?}")))
}

/// RFC 6902: applies every operation in order, or none.
pub(crate) fn json_patch(doc: &Value, ops: &Value) -> Result<Value, ApiError> {
    let ops = ops
        .as_array()
        .ok_or_else(|| ApiError::bad_request("a JSON patch must be an array of operations"))?;
    let mut doc = doc.clone();
    for op in ops {
        let path = str_field(op, "path")?;
        let value = || {
            op.get("value")
                .cloned()
                .ok_or_else(|| ApiError::bad_request("JSON patch operation needs \"value\""))
        };
        match str_field(op, "op")? {
            "add" => add(&mut doc, path, value()?)?,
            "remove" => {
                remove(&mut doc, path)?;
            }
            "replace" => {
                let target = doc.pointer_mut(path).ok_or_else(|| missing(path))?;
                *target = value()?;
            }
            "move" => {
                let moved = remove(&mut doc, str_field(op, "from")?)?;
                add(&mut doc, path, moved)?;
            }
            "copy" => {
                let from = str_field(op, "from")?;
                let copied = doc.pointer(from).cloned().ok_or_else(|| missing(from))?;
                add(&mut doc, path, copied)?;
            }
            "test" => {
                if doc.pointer(path) != Some(&value()?) {
                    return Err(ApiError::invalid(
                        "JSONPatch",
                        "",
                        path,
                        "test operation failed",
                    ));
                }
            }
            other => {
                return Err(ApiError::bad_request(format!(
                    "unknown JSON patch operation {other:?}"
                )));
            }
        }
    }
    Ok(doc)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn merge_patch_merges_and_removes() {
        let mut doc = json!({"a": {"b": 1, "c": 2}, "l": [1, 2]});
        merge(&mut doc, &json!({"a": {"b": null, "d": 3}, "l": [3]}));
        assert_eq!(doc, json!({"a": {"c": 2, "d": 3}, "l": [3]}));
    }

    #[test]
    fn json_patch_operations() {
        let doc = json!({"metadata": {"labels": {"a/b": "x"}}, "list": [1, 3]});
        let patched = json_patch(
            &doc,
            &json!([
                {"op": "add", "path": "/list/1", "value": 2},
                {"op": "add", "path": "/list/-", "value": 4},
                {"op": "replace", "path": "/metadata/labels/a~1b", "value": "y"},
                {"op": "add", "path": "/spec", "value": {"n": 1}},
                {"op": "copy", "from": "/spec/n", "path": "/spec/m"},
                {"op": "remove", "path": "/spec/n"},
                {"op": "test", "path": "/spec/m", "value": 1},
            ]),
        )
        .unwrap();
        assert_eq!(
            patched,
            json!({"metadata": {"labels": {"a/b": "y"}}, "list": [1, 2, 3, 4], "spec": {"m": 1}})
        );
        assert!(json_patch(&doc, &json!([{"op": "remove", "path": "/nope"}])).is_err());
        assert!(
            json_patch(
                &doc,
                &json!([{"op": "replace", "path": "/x/y", "value": 1}])
            )
            .is_err()
        );
    }
}
