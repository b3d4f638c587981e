//! Just enough OpenAPI v3 for kubectl: its root lists every group/version,
//! and each group/version document declares that PATCH accepts
//! `fieldValidation`, so `kubectl apply` leaves validation to the server
//! instead of downloading schemas (which kubesim does not have).

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::resources::ResourceDef;

fn gv_path(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("api/{version}")
    } else {
        format!("apis/{group}/{version}")
    }
}

fn root(defs: &[ResourceDef]) -> Value {
    let paths: BTreeMap<String, Value> = defs
        .iter()
        .map(|d| {
            let path = gv_path(&d.group, &d.version);
            let url = format!("/openapi/v3/{path}?hash=kubesim");
            (path, json!({"serverRelativeURL": url}))
        })
        .collect();
    json!({"paths": paths})
}

fn group_version(defs: &[ResourceDef], gv: &str) -> Option<Value> {
    let mut paths = serde_json::Map::new();
    for def in defs.iter().filter(|d| gv_path(&d.group, &d.version) == gv) {
        let scope = if def.namespaced {
            "namespaces/{namespace}/"
        } else {
            ""
        };
        let path = format!("/{gv}/{scope}{}/{{name}}", def.plural);
        paths.insert(
            path,
            json!({
                "patch": {
                    "x-kubernetes-group-version-kind": {
                        "group": def.group, "version": def.version, "kind": def.kind,
                    },
                    "parameters": [
                        {"name": "fieldValidation", "in": "query", "schema": {"type": "string"}},
                        {"name": "fieldManager", "in": "query", "schema": {"type": "string"}},
                    ],
                    "responses": {"200": {"description": "OK"}},
                },
            }),
        );
    }
    if paths.is_empty() {
        return None;
    }
    Some(json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": "v1.33.0"},
        "paths": paths,
        "components": {"schemas": {}},
    }))
}

/// `/openapi/v3` and `/openapi/v3/{group-version path}`.
pub(crate) fn document(defs: &[ResourceDef], rest: &[&str]) -> Option<Value> {
    match rest {
        ["v3"] => Some(root(defs)),
        ["v3", gv @ ..] => group_version(defs, &gv.join("/")),
        _ => None,
    }
}
