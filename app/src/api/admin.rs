//! The operator console. Every function here needs a platform permission,
//! which only operator accounts hold; to everyone else the console answers
//! "not found".

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
