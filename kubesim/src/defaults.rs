//! What the real API server fills in on write, as far as clients notice:
//! namespace phase, secret `stringData`, service cluster IPs, pod phase, CRD
//! acceptance.

use serde_json::{Value, json};

use crate::{
    error::{ApiError, ApiResult},
    resources::ResourceDef,
};

/// Defaults applied on create and update.
pub(crate) fn apply(def: &ResourceDef, obj: &mut Value, creating: bool) -> ApiResult<()> {
    match (def.group.as_str(), def.plural.as_str()) {
        ("", "namespaces") => {
            if obj.pointer("/status/phase").is_none() {
                obj["status"] = json!({"phase": "Active"});
            }
            if obj.pointer("/spec/finalizers").is_none() {
                obj["spec"]["finalizers"] = json!(["kubernetes"]);
            }
        }
        ("", "secrets") => secret(obj)?,
        ("", "services") => service(obj, creating),
        ("", "pods") if creating && obj.pointer("/status/phase").is_none() => {
            obj["status"]["phase"] = json!("Pending");
        }
        ("apiextensions.k8s.io", "customresourcedefinitions") => crd(obj),
        _ => {}
    }
    Ok(())
}

fn secret(obj: &mut Value) -> ApiResult<()> {
    use base64::Engine;
    if obj
        .get("type")
        .and_then(Value::as_str)
        .is_none_or(str::is_empty)
    {
        obj["type"] = json!("Opaque");
    }
    if let Some(Value::Object(plain)) = obj.as_object_mut().and_then(|o| o.remove("stringData")) {
        if !obj["data"].is_object() {
            obj["data"] = json!({});
        }
        for (key, value) in plain {
            let text = value.as_str().unwrap_or_default();
            obj["data"][key] = json!(base64::engine::general_purpose::STANDARD.encode(text));
        }
    }
    if let Some(data) = obj["data"].as_object() {
        for (key, value) in data {
            let valid = value
                .as_str()
                .is_some_and(|v| base64::engine::general_purpose::STANDARD.decode(v).is_ok());
            if !valid {
                let name = obj["metadata"]["name"].as_str().unwrap_or_default();
                return Err(ApiError::invalid(
                    "Secret",
                    name,
                    &format!("data[{key}]"),
                    "must be base64-encoded",
                ));
            }
        }
    }
    Ok(())
}

fn service(obj: &mut Value, creating: bool) {
    if obj.pointer("/spec/type").is_none() {
        obj["spec"]["type"] = json!("ClusterIP");
    }
    if creating && obj.pointer("/spec/clusterIP").is_none() {
        use rand::Rng;
        let mut rng = rand::rng();
        let ip = format!(
            "10.96.{}.{}",
            rng.random_range(0..=255),
            rng.random_range(1..=254)
        );
        obj["spec"]["clusterIP"] = json!(ip);
        obj["spec"]["clusterIPs"] = json!([ip]);
    }
    if let Some(ports) = obj.pointer_mut("/spec/ports").and_then(Value::as_array_mut) {
        for port in ports {
            if port.get("protocol").is_none() {
                port["protocol"] = json!("TCP");
            }
            if port.get("targetPort").is_none() {
                port["targetPort"] = port.get("port").cloned().unwrap_or(Value::Null);
            }
        }
    }
}

fn crd(obj: &mut Value) {
    let names = obj
        .pointer("/spec/names")
        .cloned()
        .unwrap_or_else(|| json!({}));
    obj["status"] = json!({
        "acceptedNames": names,
        "storedVersions": obj.pointer("/spec/versions")
            .and_then(Value::as_array)
            .map(|vs| vs.iter().filter(|v| v["storage"] == true).map(|v| v["name"].clone()).collect::<Vec<_>>())
            .unwrap_or_default(),
        "conditions": [
            {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts", "message": "no conflicts found"},
            {"type": "Established", "status": "True", "reason": "InitialNamesAccepted", "message": "the initial names have been accepted"},
        ],
    });
}

fn valid_label(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-')
}

/// Names are DNS subdomains; namespaces and services DNS labels.
pub(crate) fn validate_name(def: &ResourceDef, name: &str) -> ApiResult<()> {
    let label_only =
        def.group.is_empty() && matches!(def.plural.as_str(), "namespaces" | "services");
    let valid = if label_only {
        valid_label(name)
    } else if matches!(def.group.as_str(), "rbac.authorization.k8s.io") {
        // RBAC names are path segments: "system:controller:x" is legal.
        !name.is_empty()
            && !name.contains('/')
            && !name.contains('%')
            && name != "."
            && name != ".."
    } else {
        name.len() <= 253 && name.split('.').all(valid_label)
    };
    if valid {
        Ok(())
    } else {
        Err(ApiError::invalid(
            &def.kind,
            name,
            "metadata.name",
            "a lowercase RFC 1123 name must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character",
        ))
    }
}
