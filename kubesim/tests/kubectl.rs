//! The real `kubectl` against the management server and a tenant.

mod common;

use std::path::{Path, PathBuf};

use tokio::process::Command;

struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Scratch {
        let dir = std::env::temp_dir().join(format!("kubesim-kubectl-{}", uuid::Uuid::now_v7()));
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs kubectl and returns stdout, failing the test on a non-zero exit.
async fn kubectl(scratch: &Scratch, kubeconfig: &Path, args: &[&str]) -> String {
    let output = Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(args)
        // A private discovery cache: tenants reuse addresses across runs.
        .env("KUBECACHEDIR", scratch.0.join("cache"))
        .output()
        .await
        .unwrap_or_else(|error| {
            panic!(
                "cannot run kubectl ({error}): kubectl must be on PATH; scripts/setup installs it"
            )
        });
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "kubectl {args:?} failed ({}):\n{stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

const TENANT: &str = "
apiVersion: kamaji.clastix.io/v1alpha1
kind: TenantControlPlane
metadata:
  name: cli
  namespace: tenants
spec:
  controlPlane:
    deployment:
      replicas: 1
    service:
      serviceType: LoadBalancer
  kubernetes:
    version: v1.32.4
  networkProfile:
    port: 6443
";

const CONFIG_MAP: &str = "
apiVersion: v1
kind: ConfigMap
metadata:
  name: greeting
  namespace: default
  labels:
    app: hello
data:
  message: hello
";

#[tokio::test]
async fn kubectl_works_against_management_and_tenant() {
    let sim = common::start().await;
    let scratch = Scratch::new();
    let management = scratch.write("management.conf", &sim.kubeconfig());

    let namespaces = kubectl(&scratch, &management, &["get", "ns"]).await;
    assert!(
        namespaces.contains("kube-system") && namespaces.contains("Active"),
        "{namespaces}"
    );
    kubectl(&scratch, &management, &["create", "namespace", "tenants"]).await;
    let tenant_manifest = scratch.write("tenant.yaml", TENANT);
    let applied = kubectl(
        &scratch,
        &management,
        &["apply", "-f", tenant_manifest.to_str().unwrap()],
    )
    .await;
    assert!(
        applied.contains("tenantcontrolplane.kamaji.clastix.io/cli created"),
        "{applied}"
    );

    let client = common::client(&sim.kubeconfig()).await;
    let admin_conf = common::admin_conf(&client, "tenants", "cli").await;
    let tenants = kubectl(&scratch, &management, &["get", "tcp", "-n", "tenants"]).await;
    assert!(
        tenants.contains("Ready") && tenants.contains("v1.32.4"),
        "{tenants}"
    );

    let tenant = scratch.write("admin.conf", &admin_conf);
    let namespaces = kubectl(&scratch, &tenant, &["get", "ns"]).await;
    assert!(namespaces.contains("kube-system"), "{namespaces}");
    let version = kubectl(&scratch, &tenant, &["version"]).await;
    assert!(version.contains("Server Version: v1.32.4"), "{version}");
    for args in [
        &["get", "nodes"][..],
        &["get", "pods", "-A"],
        &["get", "secrets", "-n", "kube-system"],
    ] {
        kubectl(&scratch, &tenant, args).await;
    }

    let manifest = scratch.write("configmap.yaml", CONFIG_MAP);
    let applied = kubectl(
        &scratch,
        &tenant,
        &["apply", "-f", manifest.to_str().unwrap()],
    )
    .await;
    assert!(applied.contains("configmap/greeting created"), "{applied}");
    let again = kubectl(
        &scratch,
        &tenant,
        &["apply", "-f", manifest.to_str().unwrap()],
    )
    .await;
    assert!(again.contains("configmap/greeting"), "{again}");
    let listed = kubectl(&scratch, &tenant, &["get", "cm", "-l", "app=hello"]).await;
    assert!(listed.contains("greeting"), "{listed}");
    let value = kubectl(
        &scratch,
        &tenant,
        &["get", "cm", "greeting", "-o", "jsonpath={.data.message}"],
    )
    .await;
    assert_eq!(value, "hello");
    let deleted = kubectl(&scratch, &tenant, &["delete", "cm", "greeting"]).await;
    assert!(deleted.contains("deleted"), "{deleted}");
    let listed = kubectl(&scratch, &tenant, &["get", "cm", "-o", "name"]).await;
    assert!(!listed.contains("greeting"), "{listed}");

    sim.shutdown().await;
}
