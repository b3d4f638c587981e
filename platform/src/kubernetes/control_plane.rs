//! Kamaji's TenantControlPlane: the object that makes a workspace's
//! Kubernetes API, and how to read its progress. Field names follow Kamaji's
//! published v1alpha1 CRD.

use kube::api::{ApiResource, DynamicObject, GroupVersionKind};
use serde_json::json;

pub fn resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("kamaji.clastix.io", "v1alpha1", "TenantControlPlane"),
        "tenantcontrolplanes",
    )
}

/// What a tenant control plane is made of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spec<'a> {
    pub name: &'a str,
    pub namespace: &'a str,
    /// `1.33.2`
    pub version: &'a str,
    pub replicas: i32,
    pub cert_sans: Vec<String>,
    pub oidc_issuer: &'a str,
    /// The workspace id: the OIDC client id of this cluster.
    pub oidc_client_id: &'a str,
}

impl Spec<'_> {
    pub fn object(&self) -> DynamicObject {
        let mut object = DynamicObject::new(self.name, &resource()).within(self.namespace);
        object.metadata.labels = Some(
            [(
                "app.loopback.dev/workspace".to_string(),
                self.oidc_client_id.to_string(),
            )]
            .into_iter()
            .collect(),
        );
        object.data = json!({
            "spec": {
                "controlPlane": {
                    "deployment": {
                        "replicas": self.replicas,
                        "extraArgs": {
                            "apiServer": [
                                format!("--oidc-issuer-url={}", self.oidc_issuer),
                                format!("--oidc-client-id={}", self.oidc_client_id),
                                "--oidc-username-claim=email",
                                "--oidc-groups-claim=groups",
                            ]
                        }
                    },
                    "service": { "serviceType": "LoadBalancer" }
                },
                "kubernetes": {
                    "version": format!("v{}", self.version),
                    "kubelet": { "cgroupfs": "systemd" },
                    "admissionControllers": ["ResourceQuota", "LimitRanger"]
                },
                "networkProfile": { "port": 6443, "certSANs": self.cert_sans },
                "addons": { "coreDNS": {}, "kubeProxy": {}, "konnectivity": {} }
            }
        });
        object
    }
}

/// Kamaji's view of the control plane: `status.kubernetesResources.version.status`.
pub fn state(object: &DynamicObject) -> Option<String> {
    object.data["status"]["kubernetesResources"]["version"]["status"]
        .as_str()
        .map(str::to_string)
}

/// The Secret holding the admin kubeconfig (`admin.conf`).
pub fn admin_secret(name: &str) -> String {
    format!("{name}-admin-kubeconfig")
}
