//! Kubernetes applications: the operator's catalog of manifests and Helm
//! charts installed into workspaces, prerequisites before the tenant control
//! plane (into the workspace's management namespace), the rest after (into
//! the tenant).

use std::time::Duration;

use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams};
use kube::core::GroupVersionKind;
use kube::discovery::{self, Scope};
use protocol::ids::ApplicationId;
use protocol::views::{ApplicationSource, ApplicationView, ChartRef, NewApplication};
use sqlx::PgPool;

use super::KubeError;
use crate::audit::{self, By, Entry};
use crate::authz::{Actor, Permission, Resource, authorize};
use crate::error::{Error, Result};

const FIELD_MANAGER: &str = "loopback";

#[derive(sqlx::FromRow)]
struct Row {
    id: ApplicationId,
    name: String,
    version: String,
    source: ApplicationSource,
    manifests: Option<String>,
    chart: Option<sqlx::types::Json<ChartRef>>,
    prerequisite: bool,
    position: i32,
    install_timeout_secs: i32,
    active: bool,
}

impl From<Row> for ApplicationView {
    fn from(r: Row) -> Self {
        Self {
            id: r.id,
            name: r.name,
            version: r.version,
            source: r.source,
            manifests: r.manifests,
            chart: r.chart.map(|c| c.0),
            prerequisite: r.prerequisite,
            position: r.position,
            install_timeout_secs: r.install_timeout_secs,
            active: r.active,
        }
    }
}

const VIEW: &str = "SELECT id, name, version, source, manifests, chart, prerequisite, position,
        install_timeout_secs, active FROM kubernetes_applications";

pub async fn list(db: &PgPool, actor: &Actor) -> Result<Vec<ApplicationView>> {
    authorize(db, actor, Permission::PlatformCatalog, Resource::Platform).await?;
    Ok(all(db).await?)
}

async fn all(db: &PgPool) -> Result<Vec<ApplicationView>, sqlx::Error> {
    let rows: Vec<Row> = sqlx::query_as(&format!(
        "{VIEW} ORDER BY prerequisite DESC, position, name"
    ))
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().map(Into::into).collect())
}

/// Active applications of one phase, in install order.
pub async fn phase(db: &PgPool, prerequisite: bool) -> Result<Vec<ApplicationView>, sqlx::Error> {
    let rows: Vec<Row> = sqlx::query_as(&format!(
        "{VIEW} WHERE active AND prerequisite = $1 ORDER BY position, name"
    ))
    .bind(prerequisite)
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().map(Into::into).collect())
}

/// The YAML documents of a manifest bundle, each an object with
/// apiVersion, kind and metadata.name.
pub fn parse_manifests(yaml: &str) -> Result<Vec<DynamicObject>, String> {
    let mut objects = Vec::new();
    for (i, doc) in serde_yaml::Deserializer::from_str(yaml).enumerate() {
        let value = <serde_yaml::Value as serde::Deserialize>::deserialize(doc)
            .map_err(|e| format!("document {}: {e}", i + 1))?;
        if value.is_null() {
            continue;
        }
        let object: DynamicObject =
            serde_yaml::from_value(value).map_err(|e| format!("document {}: {e}", i + 1))?;
        if object.types.is_none() || object.metadata.name.is_none() {
            return Err(format!(
                "document {} needs apiVersion, kind and metadata.name",
                i + 1
            ));
        }
        objects.push(object);
    }
    if objects.is_empty() {
        return Err("no objects in the manifests".into());
    }
    Ok(objects)
}

pub async fn add(db: &PgPool, actor: &Actor, new: &NewApplication) -> Result<ApplicationId> {
    authorize(db, actor, Permission::PlatformCatalog, Resource::Platform).await?;
    let name = protocol::names::workspace_name(&new.name);
    if name.len() < 2 {
        return Err(Error::invalid("name", "use at least 2 letters or digits"));
    }
    let version = new.version.trim();
    if version.is_empty() || version.len() > 64 {
        return Err(Error::invalid("version", "give the application's version"));
    }
    if !(1..=86_400).contains(&new.install_timeout_secs) {
        return Err(Error::invalid(
            "install_timeout_secs",
            "use 1 to 86400 seconds",
        ));
    }
    let (manifests, chart) = match new.source {
        ApplicationSource::Manifests => {
            let yaml = new.manifests.clone().unwrap_or_default();
            parse_manifests(&yaml).map_err(|e| Error::invalid("manifests", e))?;
            (Some(yaml), None)
        }
        ApplicationSource::Helm => {
            let chart = new.chart.clone().ok_or_else(|| {
                Error::invalid("chart", "give the chart's repository, name and version")
            })?;
            for (field, value) in [
                ("chart.repository", &chart.repository),
                ("chart.chart", &chart.chart),
                ("chart.version", &chart.version),
                ("chart.namespace", &chart.namespace),
            ] {
                if value.trim().is_empty() {
                    return Err(Error::invalid(field, "required"));
                }
            }
            if !chart.repository.starts_with("https://") && !chart.repository.starts_with("oci://")
            {
                return Err(Error::invalid(
                    "chart.repository",
                    "use an https:// or oci:// URL",
                ));
            }
            (None, Some(sqlx::types::Json(chart)))
        }
    };
    let id = ApplicationId::new();
    let mut tx = db.begin().await?;
    sqlx::query(
        "INSERT INTO kubernetes_applications
             (id, name, version, source, manifests, chart, prerequisite, position, install_timeout_secs)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(id)
    .bind(&name)
    .bind(version)
    .bind(new.source)
    .bind(&manifests)
    .bind(&chart)
    .bind(new.prerequisite)
    .bind(new.position)
    .bind(new.install_timeout_secs)
    .execute(&mut *tx)
    .await
    .map_err(Error::taken("version", "this application version is already in the catalog"))?;
    audit::record(
        &mut tx,
        By::Actor(actor),
        Entry::new("application.create", "application", id).details(serde_json::json!({
            "name": name, "version": version, "prerequisite": new.prerequisite
        })),
    )
    .await?;
    tx.commit().await?;
    Ok(id)
}

pub async fn set_active(db: &PgPool, actor: &Actor, id: ApplicationId, active: bool) -> Result<()> {
    authorize(db, actor, Permission::PlatformCatalog, Resource::Platform).await?;
    crate::catalog::set_active(db, actor, crate::catalog::Entry::Application, id.0, active).await
}

/// The objects an application consists of, with `namespace` for namespaced
/// objects that name none. A Helm chart becomes a Job running `helm upgrade
/// --install`, which is what gets waited for.
pub fn objects(app: &ApplicationView, namespace: &str) -> Result<Vec<DynamicObject>, String> {
    let mut objects = match app.source {
        ApplicationSource::Manifests => parse_manifests(app.manifests.as_deref().unwrap_or(""))?,
        ApplicationSource::Helm => {
            let chart = app.chart.as_ref().ok_or("the application has no chart")?;
            vec![helm_job(&app.name, chart, namespace)?]
        }
    };
    for o in &mut objects {
        o.metadata
            .labels
            .get_or_insert_with(Default::default)
            .insert("app.loopback.dev/application".into(), app.name.clone());
        if o.metadata.namespace.is_none() {
            o.metadata.namespace = Some(namespace.to_string());
        }
    }
    Ok(objects)
}

fn helm_job(name: &str, chart: &ChartRef, namespace: &str) -> Result<DynamicObject, String> {
    let mut args = vec![
        "upgrade".to_string(),
        "--install".into(),
        name.to_string(),
        chart.chart.clone(),
        "--repo".into(),
        chart.repository.clone(),
        "--version".into(),
        chart.version.clone(),
        "--namespace".into(),
        chart.namespace.clone(),
        "--create-namespace".into(),
        "--wait".into(),
    ];
    if !chart.values.trim().is_empty() {
        args.extend(["--values".into(), "/values/values.yaml".into()]);
    }
    serde_json::from_value(serde_json::json!({
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": { "name": format!("install-{name}"), "namespace": namespace },
        "spec": {
            "backoffLimit": 2,
            "template": { "spec": {
                "restartPolicy": "Never",
                "containers": [{ "name": "helm", "image": "alpine/helm:3.16.4", "args": args }]
            }}
        }
    }))
    .map_err(|e| e.to_string())
}

/// Applies `objects` with server-side apply.
pub async fn apply(client: &kube::Client, objects: &[DynamicObject]) -> Result<(), KubeError> {
    for object in objects {
        let api = api_for(client, object).await?;
        let name = object.metadata.name.clone().unwrap_or_default();
        api.patch(
            &name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(object),
        )
        .await?;
    }
    Ok(())
}

/// Deletes `objects` (in reverse order); absent ones are fine.
pub async fn remove(client: &kube::Client, objects: &[DynamicObject]) -> Result<(), KubeError> {
    for object in objects.iter().rev() {
        let api = api_for(client, object).await?;
        let name = object.metadata.name.clone().unwrap_or_default();
        match api.delete(&name, &DeleteParams::background()).await {
            Ok(_) => {}
            Err(e) if super::is_not_found(&e) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// Whether every workload among `objects` is ready: Deployments available,
/// Jobs succeeded (a failed Job is an error). Other objects are ready once
/// they exist.
pub async fn ready(client: &kube::Client, objects: &[DynamicObject]) -> Result<bool, KubeError> {
    for object in objects {
        let kind = object.types.as_ref().map(|t| t.kind.as_str()).unwrap_or("");
        if !matches!(kind, "Deployment" | "Job" | "StatefulSet" | "DaemonSet") {
            continue;
        }
        let api = api_for(client, object).await?;
        let name = object.metadata.name.clone().unwrap_or_default();
        let Some(live) = api.get_opt(&name).await? else {
            return Ok(false);
        };
        let status = live.data.get("status");
        let number = |field: &str| {
            status
                .and_then(|s| s.get(field))
                .and_then(serde_json::Value::as_i64)
                .unwrap_or(0)
        };
        let ok = match kind {
            "Job" => {
                if number("failed") > live.data["spec"]["backoffLimit"].as_i64().unwrap_or(6) {
                    return Err(KubeError::Api(format!("job {name} failed")));
                }
                number("succeeded") >= 1
            }
            "DaemonSet" => {
                number("desiredNumberScheduled") > 0
                    && number("numberReady") >= number("desiredNumberScheduled")
            }
            _ => {
                let wanted = live.data["spec"]["replicas"].as_i64().unwrap_or(1);
                let field = if kind == "StatefulSet" {
                    "readyReplicas"
                } else {
                    "availableReplicas"
                };
                number(field) >= wanted
            }
        };
        if !ok {
            return Ok(false);
        }
    }
    Ok(true)
}

async fn api_for(
    client: &kube::Client,
    object: &DynamicObject,
) -> Result<Api<DynamicObject>, KubeError> {
    let types = object
        .types
        .as_ref()
        .ok_or_else(|| KubeError::Api("an object without apiVersion/kind".into()))?;
    let gvk = GroupVersionKind::try_from(types).map_err(|e| KubeError::Api(e.to_string()))?;
    let (resource, capabilities) = discovery::pinned_kind(client, &gvk).await?;
    Ok(match capabilities.scope {
        Scope::Namespaced => Api::namespaced_with(
            client.clone(),
            object.metadata.namespace.as_deref().unwrap_or("default"),
            &resource,
        ),
        Scope::Cluster => Api::all_with(client.clone(), &resource),
    })
}

/// Installs one application and waits until it is ready or its timeout
/// passes; on failure removes what it applied.
pub async fn install(
    client: &kube::Client,
    app: &ApplicationView,
    namespace: &str,
) -> Result<(), String> {
    let objects = objects(app, namespace)?;
    let timeout = Duration::from_secs(u64::try_from(app.install_timeout_secs).unwrap_or(300));
    let outcome = tokio::time::timeout(timeout, async {
        apply(client, &objects).await?;
        loop {
            if ready(client, &objects).await? {
                return Ok::<(), KubeError>(());
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    })
    .await;
    let error = match outcome {
        Ok(Ok(())) => return Ok(()),
        Ok(Err(e)) => e.to_string(),
        Err(_) => format!("not ready within {} s", app.install_timeout_secs),
    };
    let cleanup = match remove(client, &objects).await {
        Ok(()) => "; what it started was removed".to_string(),
        Err(e) => format!("; removing what it started also failed: {e}"),
    };
    Err(format!("{} {}: {error}{cleanup}", app.name, app.version))
}

/// Removes an installed application (deleting a workspace).
pub async fn uninstall(
    client: &kube::Client,
    app: &ApplicationView,
    namespace: &str,
) -> Result<(), String> {
    let objects = objects(app, namespace)?;
    remove(client, &objects).await.map_err(|e| e.to_string())
}
