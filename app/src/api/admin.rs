//! The operator console. Every function here needs a platform permission,
//! which only operator accounts hold; to everyone else the console answers
//! "not found".
// Server functions behind HTML forms take one argument per form field; the
// generated client functions repeat that list, so the lint cannot be
// silenced per function.
#![allow(clippy::too_many_arguments)]

use leptos::prelude::*;
use protocol::ids::OrganizationId;
use protocol::views::{
    AuditView, EmailView, OrganizationState, OrganizationView, Page, Verification,
};

use crate::error::AppError;

/// `verification`: "", "pending", "verified" or "rejected".
#[server]
pub async fn admin_organizations(
    verification: String,
    search: String,
    page: u32,
) -> Result<Page<OrganizationView>, AppError> {
    let (ctx, actor) = crate::server::signed_in().await?;
    let verification = match verification.as_str() {
        "" => None,
        "pending" => Some(Verification::Pending),
        "verified" => Some(Verification::Verified),
        "rejected" => Some(Verification::Rejected),
        _ => {
            return Err(AppError::invalid(
                "verification",
                "choose pending, verified or rejected",
            ));
        }
    };
    let page = protocol::views::PageRequest::new(page, 25);
    Ok(platform::tenancy::organizations::list_all(
        ctx.db(),
        &actor,
        verification,
        Some(&search),
        page,
    )
    .await?)
}

#[server]
pub async fn admin_set_verification(
    org: OrganizationId,
    verification: Verification,
    note: String,
) -> Result<(), AppError> {
    let (ctx, actor) = crate::server::signed_in().await?;
    Ok(platform::tenancy::organizations::set_verification(
        ctx.db(),
        &actor,
        org,
        verification,
        &note,
    )
    .await?)
}

#[server]
pub async fn admin_set_state(
    org: OrganizationId,
    state: OrganizationState,
    note: String,
) -> Result<(), AppError> {
    let (ctx, actor) = crate::server::signed_in().await?;
    Ok(platform::tenancy::organizations::set_state(ctx.db(), &actor, org, state, &note).await?)
}

#[server]
pub async fn admin_mail(page: u32) -> Result<Page<EmailView>, AppError> {
    let (ctx, actor) = crate::server::signed_in().await?;
    let page = protocol::views::PageRequest::new(page, 25);
    Ok(platform::mail::list(ctx.db(), &actor, page).await?)
}

#[server]
pub async fn admin_audit(
    action: String,
    actor_email: String,
    before: String,
) -> Result<Vec<AuditView>, AppError> {
    let (ctx, actor) = crate::server::signed_in().await?;
    let filter = crate::api::tenancy::audit_filter(action, actor_email, &before)?;
    Ok(platform::audit::all(ctx.db(), &actor, &filter).await?)
}

// ----- Kubernetes catalog -----

#[server]
pub async fn admin_versions() -> Result<Vec<protocol::views::KubernetesVersionView>, AppError> {
    let (ctx, actor) = crate::server::signed_in().await?;
    Ok(platform::kubernetes::catalog::versions(ctx.db(), &actor).await?)
}

#[server]
pub async fn admin_add_version(
    version: String,
    #[server(default)] active: Option<String>,
) -> Result<(), AppError> {
    let (ctx, actor) = crate::server::signed_in().await?;
    platform::kubernetes::catalog::add_version(ctx.db(), &actor, &version, active.is_some())
        .await?;
    Ok(())
}

#[server]
pub async fn admin_set_version_active(
    version: protocol::ids::KubernetesVersionId,
    active: bool,
) -> Result<(), AppError> {
    let (ctx, actor) = crate::server::signed_in().await?;
    Ok(
        platform::kubernetes::catalog::set_version_active(ctx.db(), &actor, version, active)
            .await?,
    )
}

#[server]
pub async fn admin_clusters() -> Result<Vec<protocol::views::ManagementClusterView>, AppError> {
    let (ctx, actor) = crate::server::signed_in().await?;
    Ok(platform::kubernetes::catalog::clusters(ctx.db(), &actor).await?)
}

#[server]
pub async fn admin_register_cluster(
    name: String,
    kind: protocol::views::ManagementClusterKind,
    #[server(default)] provider_type: Option<String>,
    domain: String,
    kubeconfig: String,
    capacity: i32,
) -> Result<(), AppError> {
    let (_ctx, actor) = crate::server::signed_in().await?;
    let platform = crate::server::platform()?;
    let new = protocol::views::NewManagementCluster {
        name,
        kind,
        provider_type: provider_type.filter(|p| !p.is_empty()),
        domain,
        kubeconfig,
        capacity,
    };
    platform::kubernetes::catalog::register_cluster(&platform, &actor, &new).await?;
    Ok(())
}

#[server]
pub async fn admin_set_cluster_active(
    cluster: protocol::ids::ManagementClusterId,
    active: bool,
) -> Result<(), AppError> {
    let (ctx, actor) = crate::server::signed_in().await?;
    Ok(
        platform::kubernetes::catalog::set_cluster_active(ctx.db(), &actor, cluster, active)
            .await?,
    )
}

#[server]
pub async fn admin_check_cluster(
    cluster: protocol::ids::ManagementClusterId,
) -> Result<protocol::views::ManagementClusterView, AppError> {
    let (_ctx, actor) = crate::server::signed_in().await?;
    let platform = crate::server::platform()?;
    Ok(platform::kubernetes::catalog::check_cluster(&platform, &actor, cluster).await?)
}

#[server]
pub async fn admin_applications() -> Result<Vec<protocol::views::ApplicationView>, AppError> {
    let (ctx, actor) = crate::server::signed_in().await?;
    Ok(platform::kubernetes::applications::list(ctx.db(), &actor).await?)
}

/// `source`: "manifests" (with `manifests`) or "helm" (with the chart
/// fields).
#[server]
pub async fn admin_add_application(
    name: String,
    version: String,
    source: protocol::views::ApplicationSource,
    #[server(default)] manifests: Option<String>,
    #[server(default)] chart_repository: Option<String>,
    #[server(default)] chart_name: Option<String>,
    #[server(default)] chart_version: Option<String>,
    #[server(default)] chart_namespace: Option<String>,
    #[server(default)] prerequisite: Option<String>,
    position: i32,
    install_timeout_secs: i32,
) -> Result<(), AppError> {
    use protocol::views::{ApplicationSource, ChartRef, NewApplication};
    let (ctx, actor) = crate::server::signed_in().await?;
    let chart = (source == ApplicationSource::Helm).then(|| ChartRef {
        repository: chart_repository.unwrap_or_default(),
        chart: chart_name.unwrap_or_default(),
        version: chart_version.unwrap_or_default(),
        namespace: chart_namespace.unwrap_or_default(),
        values: String::new(),
    });
    let new = NewApplication {
        name,
        version,
        source,
        manifests: (source == ApplicationSource::Manifests).then(|| manifests.unwrap_or_default()),
        chart,
        prerequisite: prerequisite.is_some(),
        position,
        install_timeout_secs,
    };
    platform::kubernetes::applications::add(ctx.db(), &actor, &new).await?;
    Ok(())
}

#[server]
pub async fn admin_set_application_active(
    application: protocol::ids::ApplicationId,
    active: bool,
) -> Result<(), AppError> {
    let (ctx, actor) = crate::server::signed_in().await?;
    Ok(
        platform::kubernetes::applications::set_active(ctx.db(), &actor, application, active)
            .await?,
    )
}

// ----- compute providers and profiles -----

#[server]
pub async fn admin_compute_providers() -> Result<Vec<protocol::views::ComputeProviderView>, AppError>
{
    let (ctx, actor) = crate::server::signed_in().await?;
    Ok(platform::compute::providers::list(ctx.db(), &actor).await?)
}

/// Settings by name: `base_url`, `user`, `datacenter_id` and the load
/// balancer placement as the kind needs.
#[server]
pub async fn admin_create_compute_provider(
    name: String,
    kind: protocol::views::ProviderKind,
    #[server(default)] base_url: Option<String>,
    #[server(default)] user: Option<String>,
    #[server(default)] datacenter_id: Option<String>,
    #[server(default)] load_balancer_location: Option<String>,
    #[server(default)] load_balancer_type: Option<String>,
    #[server(default)] load_balancer_network: Option<String>,
    #[server(default)] secret: Option<String>,
) -> Result<(), AppError> {
    let (_ctx, actor) = crate::server::signed_in().await?;
    let platform = crate::server::platform()?;
    let settings = [
        ("base_url", base_url),
        ("user", user),
        ("datacenter_id", datacenter_id),
        ("load_balancer_location", load_balancer_location),
        ("load_balancer_type", load_balancer_type),
        ("load_balancer_network", load_balancer_network),
    ]
    .into_iter()
    .filter(|(name, _)| kind.setting_names().contains(name))
    .filter_map(|(name, value)| {
        value
            .filter(|v| !v.trim().is_empty())
            .map(|v| (name.to_string(), v))
    })
    .collect();
    let new = protocol::views::NewComputeProvider {
        name,
        kind,
        settings,
        secret: secret.unwrap_or_default(),
    };
    platform::compute::providers::create(&platform, &actor, &new).await?;
    Ok(())
}

#[server]
pub async fn admin_check_compute_provider(
    provider: protocol::ids::ComputeProviderId,
) -> Result<Option<String>, AppError> {
    let (_ctx, actor) = crate::server::signed_in().await?;
    let platform = crate::server::platform()?;
    Ok(platform::compute::providers::check(&platform, &actor, provider).await?)
}

#[server]
pub async fn admin_set_compute_provider_active(
    provider: protocol::ids::ComputeProviderId,
    active: bool,
) -> Result<(), AppError> {
    let (ctx, actor) = crate::server::signed_in().await?;
    Ok(platform::compute::providers::set_active(ctx.db(), &actor, provider, active).await?)
}

#[server]
pub async fn admin_compute_profiles() -> Result<Vec<protocol::views::ComputeProfileView>, AppError>
{
    let (ctx, actor) = crate::server::signed_in().await?;
    Ok(platform::compute::profiles::list(ctx.db(), &actor).await?)
}

/// `parameters`: `key=value` lines (server_type, location, product, ...).
#[server]
pub async fn admin_create_compute_profile(
    name: String,
    provider_kind: protocol::views::ProviderKind,
    cpu: i32,
    ram_mb: i32,
    disk_gb: i32,
    price_cents: i32,
    #[server(default)] parameters: Option<String>,
) -> Result<(), AppError> {
    let (ctx, actor) = crate::server::signed_in().await?;
    let parameters = crate::api::workspaces::parse_metadata(parameters.as_deref().unwrap_or(""))
        .map_err(|_| AppError::invalid("parameters", "write one key=value per line"))?;
    let new = protocol::views::NewComputeProfile {
        name,
        provider_kind,
        cpu,
        ram_mb,
        disk_gb,
        price_cents,
        parameters,
    };
    platform::compute::profiles::create(ctx.db(), &actor, &new).await?;
    Ok(())
}

#[server]
pub async fn admin_set_compute_profile_active(
    profile: protocol::ids::ComputeProfileId,
    active: bool,
) -> Result<(), AppError> {
    let (ctx, actor) = crate::server::signed_in().await?;
    Ok(platform::compute::profiles::set_active(ctx.db(), &actor, profile, active).await?)
}

#[server]
pub async fn admin_profile_availability(
    profile: protocol::ids::ComputeProfileId,
) -> Result<Vec<protocol::views::Availability>, AppError> {
    let (_ctx, actor) = crate::server::signed_in().await?;
    let platform = crate::server::platform()?;
    Ok(platform::compute::profiles::availability(&platform, &actor, profile).await?)
}
