//! Alerts and silences of a project: the filtered, paged list, one alert
//! with its history, acknowledging, and silences (create, list, end).
//!
//! Filters and form choices arrive as the text of form controls; they are
//! parsed here so every mistake names the control it came from.

use leptos::prelude::*;
use protocol::ids::{AlertId, MonitorId, ProjectId, SilenceId};
use protocol::views::Page;
use protocol::views::monitoring::{
    AlertDetail, AlertFilter, AlertState, AlertView, Severity, SilenceView,
};
use serde::{Deserialize, Serialize};

use crate::error::AppError;

/// Alerts shown per page.
pub const ALERTS_PER_PAGE: u32 = 25;

/// The longest silence (30 days), in minutes.
pub const MAX_SILENCE_MINUTES: u32 = 30 * 24 * 60;

/// Fields of the silence form.
pub const SILENCE_FIELDS: &[&str] = &["monitor", "duration", "custom_minutes", "comment"];

/// One page of a project's alerts, and whether the caller may act on them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertsSection {
    pub page: Page<AlertView>,
    pub can_manage: bool,
}

/// One alert with its history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertDetails {
    pub detail: AlertDetail,
    pub can_manage: bool,
}

/// A monitor the silence form can name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MonitorChoice {
    pub id: MonitorId,
    pub name: String,
}

/// A project's silences (active first), with the monitors a new one may
/// cover.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SilencesSection {
    pub items: Vec<SilenceView>,
    pub monitors: Vec<MonitorChoice>,
    pub can_manage: bool,
}

/// The filter as the page's controls give it: empty means "any".
pub fn parse_filter(
    state: &str,
    severity: &str,
    acknowledged: &str,
    monitor: &str,
) -> Result<AlertFilter, AppError> {
    let state = match state.trim() {
        "" => None,
        s => Some(
            AlertState::from_key(s)
                .ok_or_else(|| AppError::invalid("state", "choose pending, firing or resolved"))?,
        ),
    };
    let severity = match severity.trim() {
        "" => None,
        s => Some(
            Severity::from_key(s)
                .ok_or_else(|| AppError::invalid("severity", "choose info, warning or critical"))?,
        ),
    };
    let acknowledged = match acknowledged.trim() {
        "" => None,
        "yes" | "true" => Some(true),
        "no" | "false" => Some(false),
        _ => return Err(AppError::invalid("acknowledged", "choose yes or no")),
    };
    let monitor = match monitor.trim() {
        "" => None,
        m => Some(
            m.parse::<MonitorId>()
                .map_err(|_| AppError::invalid("monitor", "not a monitor id"))?,
        ),
    };
    Ok(AlertFilter {
        state,
        severity,
        monitor,
        acknowledged,
    })
}

/// How long a silence lasts, from the duration choice (`1h`, `4h`, `1d` or
/// `custom` with minutes).
pub fn silence_seconds(duration: &str, custom_minutes: &str) -> Result<u32, AppError> {
    match duration {
        "1h" => Ok(3600),
        "4h" => Ok(4 * 3600),
        "1d" => Ok(24 * 3600),
        "custom" => {
            let minutes = custom_minutes
                .trim()
                .parse::<u32>()
                .ok()
                .filter(|m| (1..=MAX_SILENCE_MINUTES).contains(m))
                .ok_or_else(|| {
                    AppError::invalid(
                        "custom_minutes",
                        format!(
                            "a whole number of minutes from 1 to {MAX_SILENCE_MINUTES} (30 days)"
                        ),
                    )
                })?;
            Ok(minutes * 60)
        }
        _ => Err(AppError::invalid(
            "duration",
            "choose 1 hour, 4 hours, 1 day or a custom length",
        )),
    }
}

#[server]
pub async fn list_alerts(
    project: ProjectId,
    #[server(default)] state: String,
    #[server(default)] severity: String,
    #[server(default)] acknowledged: String,
    #[server(default)] monitor: String,
    #[server(default)] page: u32,
) -> Result<AlertsSection, AppError> {
    let (ctx, actor) = crate::server::signed_in().await?;
    let filter = parse_filter(&state, &severity, &acknowledged, &monitor)?;
    let scope = platform::monitoring::Scope::Project(project);
    let page = platform::monitoring::alerts::list(
        &ctx.platform,
        &actor,
        scope,
        filter,
        protocol::views::PageRequest::new(page, ALERTS_PER_PAGE),
    )
    .await?;
    let can_manage = server::can_manage(&ctx, &actor, project).await;
    Ok(AlertsSection { page, can_manage })
}

#[server]
pub async fn get_alert(alert: AlertId) -> Result<AlertDetails, AppError> {
    let (ctx, actor) = crate::server::signed_in().await?;
    let detail = platform::monitoring::alerts::get(&ctx.platform, &actor, alert).await?;
    let can_manage = server::can_manage(&ctx, &actor, detail.alert.project).await;
    Ok(AlertDetails { detail, can_manage })
}

/// Acknowledges a firing alert; the comment says who is on it and why.
#[server]
pub async fn acknowledge_alert(alert: AlertId, comment: String) -> Result<AlertView, AppError> {
    let (ctx, actor) = crate::server::signed_in().await?;
    let comment = comment.trim();
    // Checked before the platform call: the answer is the same for every
    // alert id, so it reveals nothing, and the form gets its field error.
    if comment.is_empty() {
        return Err(AppError::invalid(
            "comment",
            "say what is being done about it (required)",
        ));
    }
    Ok(platform::monitoring::alerts::acknowledge(&ctx.platform, &actor, alert, comment).await?)
}

#[server]
pub async fn list_silences(project: ProjectId) -> Result<SilencesSection, AppError> {
    let (ctx, actor) = crate::server::signed_in().await?;
    let items = platform::monitoring::alerts::list_silences(&ctx.platform, &actor, project).await?;
    // The monitor choice is a convenience: a caller who can see silences
    // but not list monitors still gets the list.
    let monitors = platform::monitoring::list(
        &ctx.platform,
        &actor,
        platform::monitoring::Scope::Project(project),
    )
    .await
    .map(|ms| {
        ms.into_iter()
            .map(|m| MonitorChoice {
                id: m.monitor.id,
                name: m.monitor.name,
            })
            .collect()
    })
    .unwrap_or_default();
    let can_manage = server::can_manage(&ctx, &actor, project).await;
    Ok(SilencesSection {
        items,
        monitors,
        can_manage,
    })
}

/// Silences one monitor (`monitor` set) or the whole project for a while.
#[server]
pub async fn create_silence(
    project: ProjectId,
    #[server(default)] monitor: String,
    duration: String,
    #[server(default)] custom_minutes: String,
    comment: String,
) -> Result<SilenceView, AppError> {
    let (ctx, actor) = crate::server::signed_in().await?;
    let monitor =
        match monitor.trim() {
            "" => None,
            m => Some(m.parse::<MonitorId>().map_err(|_| {
                AppError::invalid("monitor", "choose a monitor or the whole project")
            })?),
        };
    let duration_seconds = silence_seconds(&duration, &custom_minutes)?;
    let new = protocol::views::monitoring::NewSilence {
        monitor,
        duration_seconds,
        comment: comment.trim().to_string(),
    };
    platform::monitoring::alerts::create_silence(&ctx.platform, &actor, project, new)
        .await
        .map_err(|e| silence_form_error(AppError::from(e)))
}

/// Ends a silence now.
#[server]
pub async fn expire_silence(silence: SilenceId) -> Result<(), AppError> {
    let (ctx, actor) = crate::server::signed_in().await?;
    Ok(platform::monitoring::alerts::expire_silence(&ctx.platform, &actor, silence).await?)
}

/// The domain names `duration_seconds`; the form calls it `duration`.
pub fn silence_form_error(e: AppError) -> AppError {
    match &e {
        AppError::Invalid { field, message } if field == "duration_seconds" => {
            AppError::invalid("duration", message.clone())
        }
        _ => e,
    }
}

#[cfg(feature = "ssr")]
mod server {
    use platform::authz::{Actor, Permission, Resource, authorize};
    use protocol::ids::ProjectId;

    use crate::server::Ctx;

    pub async fn can_manage(ctx: &Ctx, actor: &Actor, project: ProjectId) -> bool {
        authorize(
            ctx.db(),
            actor,
            Permission::MonitoringManage,
            Resource::Project(project),
        )
        .await
        .is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_parse_from_controls() {
        let f = parse_filter("firing", "critical", "no", "").unwrap();
        assert_eq!(f.state, Some(AlertState::Firing));
        assert_eq!(f.severity, Some(Severity::Critical));
        assert_eq!(f.acknowledged, Some(false));
        assert_eq!(f.monitor, None);
        assert_eq!(
            parse_filter("", "", "", "").unwrap(),
            AlertFilter::default()
        );
        for (field, e) in [
            ("state", parse_filter("burning", "", "", "")),
            ("severity", parse_filter("", "dire", "", "")),
            ("acknowledged", parse_filter("", "", "maybe", "")),
            ("monitor", parse_filter("", "", "", "nope")),
        ] {
            assert!(e.unwrap_err().for_field(field).is_some(), "{field}");
        }
    }

    #[test]
    fn silence_lengths() {
        assert_eq!(silence_seconds("1h", "").unwrap(), 3600);
        assert_eq!(silence_seconds("4h", "").unwrap(), 14_400);
        assert_eq!(silence_seconds("1d", "x").unwrap(), 86_400);
        assert_eq!(silence_seconds("custom", " 90 ").unwrap(), 5400);
        for m in ["", "0", "-5", "1.5", "43201"] {
            let e = silence_seconds("custom", m).unwrap_err();
            assert!(e.for_field("custom_minutes").is_some(), "{m}");
        }
        assert!(
            silence_seconds("2w", "")
                .unwrap_err()
                .for_field("duration")
                .is_some()
        );
        let e = silence_form_error(AppError::invalid("duration_seconds", "too long"));
        assert_eq!(e.for_field("duration").as_deref(), Some("too long"));
    }
}
