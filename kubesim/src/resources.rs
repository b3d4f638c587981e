//! The resource types a server serves: built-in kinds plus every kind a
//! stored CustomResourceDefinition declares.

use serde_json::Value;

use crate::store::{GroupResource, Store};

/// A column of `kubectl get` output for a custom resource, from the CRD's
/// `additionalPrinterColumns`.
#[derive(Clone, Debug)]
pub(crate) struct PrinterColumn {
    pub name: String,
    pub kind: String,
    pub json_path: String,
}

#[derive(Clone, Debug)]
pub(crate) struct ResourceDef {
    pub group: String,
    pub version: String,
    pub kind: String,
    pub plural: String,
    pub singular: String,
    pub namespaced: bool,
    pub short_names: Vec<String>,
    pub categories: Vec<String>,
    /// Whether a `status` subresource exists: then the main resource
    /// ignores status changes and `/status` changes nothing else.
    pub status: bool,
    pub printer_columns: Vec<PrinterColumn>,
}

impl ResourceDef {
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    pub fn gr(&self) -> GroupResource {
        GroupResource::new(&self.group, &self.plural)
    }
}

pub(crate) const CRDS: (&str, &str) = ("apiextensions.k8s.io", "customresourcedefinitions");
pub(crate) const KAMAJI_GROUP: &str = "kamaji.clastix.io";

struct Builtin {
    group: &'static str,
    version: &'static str,
    kind: &'static str,
    plural: &'static str,
    namespaced: bool,
    short_names: &'static [&'static str],
    status: bool,
}

const fn builtin(
    group: &'static str,
    version: &'static str,
    kind: &'static str,
    plural: &'static str,
    namespaced: bool,
    short_names: &'static [&'static str],
    status: bool,
) -> Builtin {
    Builtin {
        group,
        version,
        kind,
        plural,
        namespaced,
        short_names,
        status,
    }
}

const BUILTINS: &[Builtin] = &[
    builtin("", "v1", "Namespace", "namespaces", false, &["ns"], true),
    builtin("", "v1", "Node", "nodes", false, &["no"], true),
    builtin("", "v1", "Pod", "pods", true, &["po"], true),
    builtin("", "v1", "Secret", "secrets", true, &[], false),
    builtin("", "v1", "ConfigMap", "configmaps", true, &["cm"], false),
    builtin("", "v1", "Service", "services", true, &["svc"], true),
    builtin(
        "",
        "v1",
        "ServiceAccount",
        "serviceaccounts",
        true,
        &["sa"],
        false,
    ),
    builtin("", "v1", "Event", "events", true, &["ev"], false),
    builtin("", "v1", "Endpoints", "endpoints", true, &["ep"], false),
    builtin(
        "",
        "v1",
        "PersistentVolumeClaim",
        "persistentvolumeclaims",
        true,
        &["pvc"],
        true,
    ),
    builtin(
        "apps",
        "v1",
        "Deployment",
        "deployments",
        true,
        &["deploy"],
        true,
    ),
    builtin("apps", "v1", "DaemonSet", "daemonsets", true, &["ds"], true),
    builtin(
        "apps",
        "v1",
        "StatefulSet",
        "statefulsets",
        true,
        &["sts"],
        true,
    ),
    builtin(
        "apps",
        "v1",
        "ReplicaSet",
        "replicasets",
        true,
        &["rs"],
        true,
    ),
    builtin("batch", "v1", "Job", "jobs", true, &[], true),
    builtin("batch", "v1", "CronJob", "cronjobs", true, &["cj"], true),
    builtin(
        "policy",
        "v1",
        "PodDisruptionBudget",
        "poddisruptionbudgets",
        true,
        &["pdb"],
        true,
    ),
    builtin(
        "rbac.authorization.k8s.io",
        "v1",
        "ClusterRole",
        "clusterroles",
        false,
        &[],
        false,
    ),
    builtin(
        "rbac.authorization.k8s.io",
        "v1",
        "ClusterRoleBinding",
        "clusterrolebindings",
        false,
        &[],
        false,
    ),
    builtin(
        "rbac.authorization.k8s.io",
        "v1",
        "Role",
        "roles",
        true,
        &[],
        false,
    ),
    builtin(
        "rbac.authorization.k8s.io",
        "v1",
        "RoleBinding",
        "rolebindings",
        true,
        &[],
        false,
    ),
    builtin(
        "coordination.k8s.io",
        "v1",
        "Lease",
        "leases",
        true,
        &[],
        false,
    ),
    builtin(
        "apiextensions.k8s.io",
        "v1",
        "CustomResourceDefinition",
        "customresourcedefinitions",
        false,
        &["crd", "crds"],
        true,
    ),
    builtin(
        KAMAJI_GROUP,
        "v1alpha1",
        "TenantControlPlane",
        "tenantcontrolplanes",
        true,
        &["tcp"],
        true,
    ),
];

/// What `kubectl get all` shows.
const IN_ALL: &[&str] = &[
    "pods",
    "services",
    "deployments",
    "daemonsets",
    "statefulsets",
    "replicasets",
    "jobs",
    "cronjobs",
];

fn kamaji_columns() -> Vec<PrinterColumn> {
    [
        ("Version", "string", ".spec.kubernetes.version"),
        (
            "Installed Version",
            "string",
            ".status.kubernetesResources.version.version",
        ),
        (
            "Status",
            "string",
            ".status.kubernetesResources.version.status",
        ),
        (
            "Control-Plane endpoint",
            "string",
            ".status.controlPlaneEndpoint",
        ),
        (
            "Kubeconfig",
            "string",
            ".status.kubeconfig.admin.secretName",
        ),
        ("Datastore", "string", ".status.storage.dataStoreName"),
        ("Age", "date", ".metadata.creationTimestamp"),
    ]
    .into_iter()
    .map(|(name, kind, path)| PrinterColumn {
        name: name.into(),
        kind: kind.into(),
        json_path: path.into(),
    })
    .collect()
}

fn builtin_defs() -> Vec<ResourceDef> {
    BUILTINS
        .iter()
        .map(|b| ResourceDef {
            group: b.group.into(),
            version: b.version.into(),
            kind: b.kind.into(),
            plural: b.plural.into(),
            singular: b.kind.to_lowercase(),
            namespaced: b.namespaced,
            short_names: b.short_names.iter().map(|s| s.to_string()).collect(),
            categories: if b.group == KAMAJI_GROUP {
                vec!["kamaji".into()]
            } else if IN_ALL.contains(&b.plural) {
                vec!["all".into()]
            } else {
                Vec::new()
            },
            status: b.status,
            printer_columns: if b.group == KAMAJI_GROUP {
                kamaji_columns()
            } else {
                Vec::new()
            },
        })
        .collect()
}

fn strings(value: Option<&Value>) -> Vec<String> {
    value
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// The served versions a CRD declares, one definition each.
pub(crate) fn from_crd(crd: &Value) -> Vec<ResourceDef> {
    let spec = &crd["spec"];
    let (Some(group), Some(plural), Some(kind)) = (
        spec["group"].as_str(),
        spec["names"]["plural"].as_str(),
        spec["names"]["kind"].as_str(),
    ) else {
        return Vec::new();
    };
    let singular = spec["names"]["singular"]
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| kind.to_lowercase());
    let namespaced = spec["scope"].as_str() != Some("Cluster");
    let versions = spec["versions"].as_array().cloned().unwrap_or_default();
    versions
        .iter()
        .filter(|v| v["served"].as_bool() != Some(false))
        .filter_map(|v| {
            let version = v["name"].as_str()?;
            let printer_columns = v["additionalPrinterColumns"]
                .as_array()
                .map(|cols| {
                    cols.iter()
                        .filter_map(|c| {
                            Some(PrinterColumn {
                                name: c["name"].as_str()?.into(),
                                kind: c["type"].as_str().unwrap_or("string").into(),
                                json_path: c["jsonPath"].as_str()?.into(),
                            })
                        })
                        .collect()
                })
                .unwrap_or_default();
            Some(ResourceDef {
                group: group.into(),
                version: version.into(),
                kind: kind.into(),
                plural: plural.into(),
                singular: singular.clone(),
                namespaced,
                short_names: strings(spec["names"].get("shortNames")),
                categories: strings(spec["names"].get("categories")),
                status: v["subresources"].get("status").is_some(),
                printer_columns,
            })
        })
        .collect()
}

/// Every served resource type: built-ins, then CRDs. A CRD for a built-in
/// group/version/resource (Kamaji's, say) replaces the built-in.
pub(crate) fn all(store: &Store) -> Vec<ResourceDef> {
    let (crds, _) = store.list(&GroupResource::new(CRDS.0, CRDS.1), None);
    let custom: Vec<ResourceDef> = crds.iter().flat_map(from_crd).collect();
    let mut defs: Vec<ResourceDef> = builtin_defs()
        .into_iter()
        .filter(|b| {
            !custom
                .iter()
                .any(|c| c.group == b.group && c.version == b.version && c.plural == b.plural)
        })
        .collect();
    defs.extend(custom);
    defs
}

/// The definition of a built-in kind, for the simulator's own writes.
pub(crate) fn builtin_def(group: &str, plural: &str) -> Option<ResourceDef> {
    builtin_defs()
        .into_iter()
        .find(|d| d.group == group && d.plural == plural)
}
