//! A small reader for the Kubernetes protobuf encoding. kubectl's generators
//! (`kubectl create namespace|secret|configmap|serviceaccount`) send
//! protobuf bodies and do not fall back to JSON, so kubesim decodes the
//! object metadata plus the fields of those few kinds. Anything else answers
//! 415 rather than silently losing fields.

use base64::Engine;
use serde_json::{Map, Value, json};

const MAGIC: &[u8] = b"k8s\0";

enum Wire<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
    Fixed,
}

struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn varint(&mut self) -> Option<u64> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let (&byte, rest) = self.buf.split_first()?;
            self.buf = rest;
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Some(value);
            }
        }
        None
    }

    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.buf.len() < n {
            return None;
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Some(head)
    }

    /// The next field number and value; None at the end (or on garbage,
    /// which `fields` reports).
    fn field(&mut self) -> Option<(u64, Wire<'a>)> {
        let key = self.varint()?;
        let wire = match key & 7 {
            0 => Wire::Varint(self.varint()?),
            1 => {
                self.take(8)?;
                Wire::Fixed
            }
            2 => {
                let len = usize::try_from(self.varint()?).ok()?;
                Wire::Bytes(self.take(len)?)
            }
            5 => {
                self.take(4)?;
                Wire::Fixed
            }
            _ => return None,
        };
        Some((key >> 3, wire))
    }
}

type Fields<'a> = Vec<(u64, Wire<'a>)>;

fn fields(buf: &[u8]) -> Result<Fields<'_>, String> {
    let mut reader = Reader { buf };
    let mut out = Vec::new();
    while !reader.buf.is_empty() {
        out.push(reader.field().ok_or("malformed protobuf")?);
    }
    Ok(out)
}

fn text(bytes: &[u8]) -> Result<String, String> {
    String::from_utf8(bytes.to_vec()).map_err(|_| "invalid UTF-8 in protobuf string".to_string())
}

/// A `map<string, string|bytes>` entry: key = 1, value = 2.
fn map_entry(bytes: &[u8], value_is_bytes: bool) -> Result<(String, Value), String> {
    let (mut key, mut value) = (String::new(), Value::String(String::new()));
    for (number, wire) in fields(bytes)? {
        match (number, wire) {
            (1, Wire::Bytes(b)) => key = text(b)?,
            (2, Wire::Bytes(b)) if value_is_bytes => {
                value = json!(base64::engine::general_purpose::STANDARD.encode(b));
            }
            (2, Wire::Bytes(b)) => value = json!(text(b)?),
            _ => {}
        }
    }
    Ok((key, value))
}

fn insert_entry(
    target: &mut Value,
    field: &str,
    bytes: &[u8],
    value_is_bytes: bool,
) -> Result<(), String> {
    let (key, value) = map_entry(bytes, value_is_bytes)?;
    if !target[field].is_object() {
        target[field] = json!({});
    }
    target[field][key] = value;
    Ok(())
}

fn push(target: &mut Value, field: &str, value: Value) {
    match target[field].as_array_mut() {
        Some(items) => items.push(value),
        None => target[field] = json!([value]),
    }
}

fn object_meta(bytes: &[u8]) -> Result<Value, String> {
    let mut meta = json!({});
    for (number, wire) in fields(bytes)? {
        match (number, wire) {
            (1, Wire::Bytes(b)) => meta["name"] = json!(text(b)?),
            (2, Wire::Bytes(b)) => meta["generateName"] = json!(text(b)?),
            (3, Wire::Bytes(b)) => meta["namespace"] = json!(text(b)?),
            (6, Wire::Bytes(b)) => meta["resourceVersion"] = json!(text(b)?),
            (11, Wire::Bytes(b)) => insert_entry(&mut meta, "labels", b, false)?,
            (12, Wire::Bytes(b)) => insert_entry(&mut meta, "annotations", b, false)?,
            (14, Wire::Bytes(b)) => push(&mut meta, "finalizers", json!(text(b)?)),
            // uid, timestamps, owner references, managed fields: the server
            // sets or ignores them on create.
            _ => {}
        }
    }
    Ok(meta)
}

fn unsupported(kind: &str) -> String {
    format!(
        "kubesim reads protobuf bodies only for Namespace, Secret, ConfigMap and ServiceAccount, not {kind}; send JSON"
    )
}

fn object(kind: &str, raw: &[u8]) -> Result<Value, String> {
    let mut obj = Value::Object(Map::new());
    for (number, wire) in fields(raw)? {
        match (kind, number, wire) {
            (_, 1, Wire::Bytes(b)) => obj["metadata"] = object_meta(b)?,
            ("Namespace", 2, Wire::Bytes(spec)) => {
                obj["spec"] = json!({});
                for (n, w) in fields(spec)? {
                    if let (1, Wire::Bytes(f)) = (n, w) {
                        push(&mut obj["spec"], "finalizers", json!(text(f)?));
                    }
                }
            }
            ("Namespace", 3, _) => {}
            ("Secret", 2, Wire::Bytes(b)) => insert_entry(&mut obj, "data", b, true)?,
            ("Secret", 3, Wire::Bytes(b)) => obj["type"] = json!(text(b)?),
            ("Secret", 4, Wire::Bytes(b)) => insert_entry(&mut obj, "stringData", b, false)?,
            ("Secret", 5, Wire::Varint(v)) | ("ConfigMap", 4, Wire::Varint(v)) => {
                obj["immutable"] = json!(v != 0);
            }
            ("ConfigMap", 2, Wire::Bytes(b)) => insert_entry(&mut obj, "data", b, false)?,
            ("ConfigMap", 3, Wire::Bytes(b)) => insert_entry(&mut obj, "binaryData", b, true)?,
            ("ServiceAccount", 4, Wire::Varint(v)) => {
                obj["automountServiceAccountToken"] = json!(v != 0)
            }
            _ => return Err(unsupported(kind)),
        }
    }
    Ok(obj)
}

/// Decodes a protobuf request body (`k8s\0` + runtime.Unknown).
pub(crate) fn decode(body: &[u8]) -> Result<Value, String> {
    let envelope = body
        .strip_prefix(MAGIC)
        .ok_or("not a Kubernetes protobuf body")?;
    let (mut api_version, mut kind, mut raw) = (String::new(), String::new(), &[][..]);
    for (number, wire) in fields(envelope)? {
        match (number, wire) {
            (1, Wire::Bytes(type_meta)) => {
                for (n, w) in fields(type_meta)? {
                    match (n, w) {
                        (1, Wire::Bytes(b)) => api_version = text(b)?,
                        (2, Wire::Bytes(b)) => kind = text(b)?,
                        _ => {}
                    }
                }
            }
            (2, Wire::Bytes(b)) => raw = b,
            _ => {}
        }
    }
    let mut obj = object(&kind, raw)?;
    obj["apiVersion"] = json!(api_version);
    obj["kind"] = json!(kind);
    Ok(obj)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(number: u64, bytes: &[u8]) -> Vec<u8> {
        let mut out = vec![(number << 3 | 2) as u8, bytes.len() as u8];
        out.extend_from_slice(bytes);
        out
    }

    #[test]
    fn decodes_a_secret() {
        let meta = [
            field(1, b"s"),
            field(3, b"ns"),
            field(11, &[field(1, b"app"), field(2, b"x")].concat()),
        ]
        .concat();
        let raw = [
            field(1, &meta),
            field(2, &[field(1, b"k"), field(2, b"v")].concat()),
            field(3, b"Opaque"),
        ]
        .concat();
        let type_meta = [field(1, b"v1"), field(2, b"Secret")].concat();
        let body = [MAGIC.to_vec(), field(1, &type_meta), field(2, &raw)].concat();
        let obj = decode(&body).unwrap();
        assert_eq!(obj["metadata"]["name"], "s");
        assert_eq!(obj["metadata"]["labels"]["app"], "x");
        assert_eq!(obj["data"]["k"], "dg==");
        assert_eq!(obj["type"], "Opaque");
    }

    #[test]
    fn refuses_kinds_it_cannot_read_fully() {
        let raw = [field(1, &field(1, b"d")), field(2, b"spec")].concat();
        let type_meta = [field(1, b"apps/v1"), field(2, b"Deployment")].concat();
        let body = [MAGIC.to_vec(), field(1, &type_meta), field(2, &raw)].concat();
        assert!(decode(&body).is_err());
    }
}
