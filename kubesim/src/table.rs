//! `meta.k8s.io/v1` Table answers, which `kubectl get` asks for and prints
//! as its columns.

use serde_json::{Value, json};
use time::{OffsetDateTime, format_description::well_known::Rfc3339};

use crate::resources::ResourceDef;

/// Kubernetes' short age format: 45s, 3m12s, 17m, 5h3m, 20h, 3d4h, 12d, 2y.
pub(crate) fn human_age(timestamp: &str) -> String {
    let Ok(then) = OffsetDateTime::parse(timestamp, &Rfc3339) else {
        return "<unknown>".into();
    };
    let secs = (OffsetDateTime::now_utc() - then).whole_seconds().max(0);
    let (m, h, d) = (secs / 60, secs / 3600, secs / 86400);
    match secs {
        s if s < 120 => format!("{s}s"),
        s if s < 600 => format!("{m}m{}s", s % 60),
        s if s < 3 * 3600 => format!("{m}m"),
        s if s < 8 * 3600 => format!("{h}h{}m", m % 60),
        s if s < 2 * 86400 => format!("{h}h"),
        s if s < 8 * 86400 => format!("{d}d{}h", h % 24),
        s if s < 2 * 365 * 86400 => format!("{d}d"),
        _ => format!("{}y", d / 365),
    }
}

fn str_at<'a>(obj: &'a Value, pointer: &str) -> &'a str {
    obj.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

fn or_none(s: String) -> String {
    if s.is_empty() { "<none>".into() } else { s }
}

fn age(obj: &Value) -> Value {
    json!(human_age(str_at(obj, "/metadata/creationTimestamp")))
}

fn node_status(node: &Value) -> String {
    let ready = node["status"]["conditions"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["type"] == "Ready"))
        .map(|c| c["status"] == "True");
    let mut status = match ready {
        Some(true) => "Ready".to_string(),
        Some(false) => "NotReady".to_string(),
        None => "Unknown".to_string(),
    };
    if node["spec"]["unschedulable"].as_bool() == Some(true) {
        status.push_str(",SchedulingDisabled");
    }
    status
}

fn node_roles(node: &Value) -> String {
    let roles: Vec<&str> = node["metadata"]["labels"]
        .as_object()
        .map(|labels| {
            labels
                .keys()
                .filter_map(|k| k.strip_prefix("node-role.kubernetes.io/"))
                .collect()
        })
        .unwrap_or_default();
    or_none(roles.join(","))
}

fn pod_cells(pod: &Value) -> Vec<Value> {
    let statuses = pod["status"]["containerStatuses"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let total = pod["spec"]["containers"].as_array().map_or(0, Vec::len);
    let ready = statuses.iter().filter(|s| s["ready"] == true).count();
    let restarts: i64 = statuses
        .iter()
        .filter_map(|s| s["restartCount"].as_i64())
        .sum();
    let phase = str_at(pod, "/status/reason");
    let phase = if phase.is_empty() {
        str_at(pod, "/status/phase")
    } else {
        phase
    };
    let phase = if phase.is_empty() { "Pending" } else { phase };
    // kubectl shows a pod on its way out as Terminating, whatever its phase.
    let phase = if pod["metadata"]["deletionTimestamp"].is_string() {
        "Terminating"
    } else {
        phase
    };
    vec![
        json!(format!("{ready}/{total}")),
        json!(phase),
        json!(restarts),
    ]
}

fn service_cells(svc: &Value) -> Vec<Value> {
    let external: Vec<&str> = svc["status"]["loadBalancer"]["ingress"]
        .as_array()
        .map(|is| {
            is.iter()
                .filter_map(|i| i["ip"].as_str().or(i["hostname"].as_str()))
                .collect()
        })
        .unwrap_or_default();
    let ports: Vec<String> = svc["spec"]["ports"]
        .as_array()
        .map(|ps| {
            ps.iter()
                .map(|p| {
                    format!(
                        "{}/{}",
                        p["port"].as_i64().unwrap_or(0),
                        p["protocol"].as_str().unwrap_or("TCP")
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    vec![
        json!(str_at(svc, "/spec/type")),
        json!(or_none(str_at(svc, "/spec/clusterIP").to_string())),
        json!(or_none(external.join(","))),
        json!(or_none(ports.join(","))),
    ]
}

fn count(value: &Value) -> usize {
    value.as_object().map_or(0, |m| m.len())
}

/// A column value from a CRD printer column's simple JSONPath.
fn json_path_cell(obj: &Value, path: &str, kind: &str) -> Value {
    let path = path.trim_start_matches('{').trim_end_matches('}');
    let pointer = format!("/{}", path.trim_start_matches('.').replace('.', "/"));
    match (obj.pointer(&pointer), kind) {
        (Some(Value::String(s)), "date") => json!(human_age(s)),
        (Some(Value::String(s)), _) => json!(s),
        (Some(Value::Null) | None, _) => json!(""),
        (Some(other), _) => other.clone(),
    }
}

/// Columns after Name, and each object's cells for them.
fn columns(def: &ResourceDef) -> Vec<(&'static str, &'static str)> {
    match (def.group.as_str(), def.plural.as_str()) {
        ("", "namespaces") => vec![("Status", "string"), ("Age", "string")],
        ("", "nodes") => vec![
            ("Status", "string"),
            ("Roles", "string"),
            ("Age", "string"),
            ("Version", "string"),
        ],
        ("", "pods") => vec![
            ("Ready", "string"),
            ("Status", "string"),
            ("Restarts", "integer"),
            ("Age", "string"),
        ],
        ("", "secrets") => vec![("Type", "string"), ("Data", "integer"), ("Age", "string")],
        ("", "configmaps") => vec![("Data", "integer"), ("Age", "string")],
        ("", "services") => vec![
            ("Type", "string"),
            ("Cluster-IP", "string"),
            ("External-IP", "string"),
            ("Port(s)", "string"),
            ("Age", "string"),
        ],
        ("apps", "replicasets") => vec![
            ("Desired", "integer"),
            ("Current", "integer"),
            ("Ready", "integer"),
            ("Age", "string"),
        ],
        ("policy", "poddisruptionbudgets") => vec![
            ("Min Available", "string"),
            ("Max Unavailable", "string"),
            ("Allowed Disruptions", "integer"),
            ("Age", "string"),
        ],
        _ => vec![("Age", "string")],
    }
}

/// An int-or-string spec field as kubectl prints it.
fn int_or_string(value: &Value) -> Value {
    match value {
        Value::Null => json!("N/A"),
        Value::String(s) => json!(s),
        other => json!(other.to_string()),
    }
}

fn cells(def: &ResourceDef, obj: &Value) -> Vec<Value> {
    let mut cells = vec![json!(str_at(obj, "/metadata/name"))];
    match (def.group.as_str(), def.plural.as_str()) {
        ("", "namespaces") => {
            let phase = str_at(obj, "/status/phase");
            cells.push(json!(if phase.is_empty() { "Active" } else { phase }));
            cells.push(age(obj));
        }
        ("", "nodes") => {
            cells.push(json!(node_status(obj)));
            cells.push(json!(node_roles(obj)));
            cells.push(age(obj));
            cells.push(json!(str_at(obj, "/status/nodeInfo/kubeletVersion")));
        }
        ("", "pods") => {
            cells.extend(pod_cells(obj));
            cells.push(age(obj));
        }
        ("", "secrets") => {
            cells.push(json!(str_at(obj, "/type")));
            cells.push(json!(count(&obj["data"])));
            cells.push(age(obj));
        }
        ("", "configmaps") => {
            cells.push(json!(count(&obj["data"]) + count(&obj["binaryData"])));
            cells.push(age(obj));
        }
        ("", "services") => {
            cells.extend(service_cells(obj));
            cells.push(age(obj));
        }
        ("apps", "replicasets") => {
            let int = |p: &str, default: i64| {
                json!(obj.pointer(p).and_then(Value::as_i64).unwrap_or(default))
            };
            cells.push(int("/spec/replicas", 1));
            cells.push(int("/status/replicas", 0));
            cells.push(int("/status/readyReplicas", 0));
            cells.push(age(obj));
        }
        ("policy", "poddisruptionbudgets") => {
            cells.push(int_or_string(&obj["spec"]["minAvailable"]));
            cells.push(int_or_string(&obj["spec"]["maxUnavailable"]));
            cells.push(json!(
                obj.pointer("/status/disruptionsAllowed")
                    .and_then(Value::as_i64)
                    .unwrap_or(0)
            ));
            cells.push(age(obj));
        }
        _ => cells.push(age(obj)),
    }
    cells
}

fn row_object(obj: &Value, include_object: &str) -> Value {
    match include_object {
        "None" => Value::Null,
        "Object" => obj.clone(),
        _ => json!({
            "kind": "PartialObjectMetadata",
            "apiVersion": "meta.k8s.io/v1",
            "metadata": obj.get("metadata").cloned().unwrap_or_else(|| json!({})),
        }),
    }
}

pub(crate) fn render(
    def: &ResourceDef,
    items: &[Value],
    resource_version: &str,
    include_object: &str,
) -> Value {
    let name_column = json!({
        "name": "Name", "type": "string", "format": "name", "priority": 0,
        "description": "Name must be unique within a namespace.",
    });
    let mut definitions = vec![name_column];
    let custom = !def.printer_columns.is_empty();
    if custom {
        definitions.extend(def.printer_columns.iter().map(|c| {
            json!({"name": c.name, "type": c.kind, "format": "", "priority": 0, "description": ""})
        }));
    } else {
        definitions.extend(columns(def).into_iter().map(|(name, kind)| {
            json!({"name": name, "type": kind, "format": "", "priority": 0, "description": ""})
        }));
    }
    let rows: Vec<Value> = items
        .iter()
        .map(|obj| {
            let cells = if custom {
                let mut cells = vec![json!(str_at(obj, "/metadata/name"))];
                cells.extend(
                    def.printer_columns
                        .iter()
                        .map(|c| json_path_cell(obj, &c.json_path, &c.kind)),
                );
                cells
            } else {
                cells(def, obj)
            };
            json!({"cells": cells, "object": row_object(obj, include_object)})
        })
        .collect();
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": resource_version},
        "columnDefinitions": definitions,
        "rows": rows,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_read_like_kubectl() {
        let at = |secs: i64| {
            (OffsetDateTime::now_utc() - time::Duration::seconds(secs))
                .format(&Rfc3339)
                .unwrap()
        };
        assert_eq!(human_age(&at(5)), "5s");
        assert_eq!(human_age(&at(185)), "3m5s");
        assert_eq!(human_age(&at(3 * 86400 + 7200)), "3d2h");
        assert_eq!(human_age("garbage"), "<unknown>");
    }
}
