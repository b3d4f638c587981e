//! Monitoring over REST for automation with an account API key: monitoring
//! objects at project and workspace scope, their results, alerts (with
//! acknowledgement) and silences. The same checks as the portal apply.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use platform::monitoring::{self, Scope, alerts};
use protocol::ids::{AlertId, MonitorId, ProjectId, SilenceId, WorkspaceId};
use protocol::views::Page;
use protocol::views::monitoring::{
    AlertDetail, AlertFilter, AlertState, AlertView, MonitorSeries, MonitorSummary, MonitorView,
    NewMonitor, NewSilence, ResultView, Severity, SilenceView, TimeRange,
};
use serde::Deserialize;

use super::{Api, ApiActor, ApiError, ErrorBody, PageQuery};

#[utoipa::path(get, path = "/projects/{project}/monitors", tag = "monitoring",
    description = "The project's monitoring objects, its workspaces' included, with their latest results.",
    params(("project" = ProjectId, Path)),
    responses((status = 200, body = [MonitorSummary]), (status = 404, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn list_project_monitors(
    State(api): State<Api>,
    ApiActor(actor): ApiActor,
    Path(project): Path<ProjectId>,
) -> Result<Json<Vec<MonitorSummary>>, ApiError> {
    Ok(Json(
        monitoring::list(&api.platform, &actor, Scope::Project(project)).await?,
    ))
}

#[utoipa::path(post, path = "/projects/{project}/monitors", tag = "monitoring",
    params(("project" = ProjectId, Path)), request_body = NewMonitor,
    responses((status = 201, body = MonitorView), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn create_project_monitor(
    State(api): State<Api>,
    ApiActor(actor): ApiActor,
    Path(project): Path<ProjectId>,
    Json(body): Json<NewMonitor>,
) -> Result<(StatusCode, Json<MonitorView>), ApiError> {
    Ok((
        StatusCode::CREATED,
        Json(monitoring::create(&api.platform, &actor, Scope::Project(project), body).await?),
    ))
}

#[utoipa::path(get, path = "/workspaces/{workspace}/monitors", tag = "monitoring",
    params(("workspace" = WorkspaceId, Path)),
    responses((status = 200, body = [MonitorSummary]), (status = 404, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn list_workspace_monitors(
    State(api): State<Api>,
    ApiActor(actor): ApiActor,
    Path(workspace): Path<WorkspaceId>,
) -> Result<Json<Vec<MonitorSummary>>, ApiError> {
    Ok(Json(
        monitoring::list(&api.platform, &actor, Scope::Workspace(workspace)).await?,
    ))
}

#[utoipa::path(post, path = "/workspaces/{workspace}/monitors", tag = "monitoring",
    params(("workspace" = WorkspaceId, Path)), request_body = NewMonitor,
    responses((status = 201, body = MonitorView), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn create_workspace_monitor(
    State(api): State<Api>,
    ApiActor(actor): ApiActor,
    Path(workspace): Path<WorkspaceId>,
    Json(body): Json<NewMonitor>,
) -> Result<(StatusCode, Json<MonitorView>), ApiError> {
    Ok((
        StatusCode::CREATED,
        Json(monitoring::create(&api.platform, &actor, Scope::Workspace(workspace), body).await?),
    ))
}

#[utoipa::path(get, path = "/monitors/{monitor}", tag = "monitoring",
    params(("monitor" = MonitorId, Path)),
    responses((status = 200, body = MonitorView), (status = 404, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn get_monitor(
    State(api): State<Api>,
    ApiActor(actor): ApiActor,
    Path(id): Path<MonitorId>,
) -> Result<Json<MonitorView>, ApiError> {
    Ok(Json(monitoring::get(&api.platform, &actor, id).await?))
}

/// Replaces the monitor's probe, interval, sources, conditions and
/// notification settings. Open alerts are closed when the conditions
/// change.
#[utoipa::path(put, path = "/monitors/{monitor}", tag = "monitoring",
    params(("monitor" = MonitorId, Path)), request_body = NewMonitor,
    responses((status = 200, body = MonitorView), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn update_monitor(
    State(api): State<Api>,
    ApiActor(actor): ApiActor,
    Path(id): Path<MonitorId>,
    Json(body): Json<NewMonitor>,
) -> Result<Json<MonitorView>, ApiError> {
    Ok(Json(
        monitoring::update(&api.platform, &actor, id, body).await?,
    ))
}

#[utoipa::path(delete, path = "/monitors/{monitor}", tag = "monitoring",
    params(("monitor" = MonitorId, Path)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn delete_monitor(
    State(api): State<Api>,
    ApiActor(actor): ApiActor,
    Path(id): Path<MonitorId>,
) -> Result<StatusCode, ApiError> {
    monitoring::delete(&api.platform, &actor, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Stored results, newest first.
#[utoipa::path(get, path = "/monitors/{monitor}/results", tag = "monitoring",
    params(("monitor" = MonitorId, Path), PageQuery),
    responses((status = 200, body = Page<ResultView>), (status = 404, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn monitor_results(
    State(api): State<Api>,
    ApiActor(actor): ApiActor,
    Path(id): Path<MonitorId>,
    Query(q): Query<PageQuery>,
) -> Result<Json<Page<ResultView>>, ApiError> {
    Ok(Json(
        monitoring::results(&api.platform, &actor, id, q.into()).await?,
    ))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RangeQuery {
    /// `1h`, `6h`, `24h` (default), `7d` or `30d`.
    pub range: Option<String>,
}

/// Latency and failures in equal buckets over the range, and the state
/// timeline.
#[utoipa::path(get, path = "/monitors/{monitor}/series", tag = "monitoring",
    params(("monitor" = MonitorId, Path), RangeQuery),
    responses((status = 200, body = MonitorSeries), (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn monitor_series(
    State(api): State<Api>,
    ApiActor(actor): ApiActor,
    Path(id): Path<MonitorId>,
    Query(q): Query<RangeQuery>,
) -> Result<Json<MonitorSeries>, ApiError> {
    let range = match q.range.as_deref() {
        None => TimeRange::default(),
        Some(key) => TimeRange::from_key(key)
            .ok_or_else(|| platform::Error::invalid("range", "use 1h, 6h, 24h, 7d or 30d"))?,
    };
    Ok(Json(
        monitoring::series(&api.platform, &actor, id, range).await?,
    ))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AlertQuery {
    /// `pending`, `firing` or `resolved`.
    pub state: Option<String>,
    /// `info`, `warning` or `critical`.
    pub severity: Option<String>,
    pub monitor: Option<MonitorId>,
    pub acknowledged: Option<bool>,
    pub page: Option<u32>,
    pub per_page: Option<u32>,
}

impl AlertQuery {
    fn filter(&self) -> Result<AlertFilter, platform::Error> {
        Ok(AlertFilter {
            state: match self.state.as_deref() {
                None | Some("") => None,
                Some(key) => Some(AlertState::from_key(key).ok_or_else(|| {
                    platform::Error::invalid("state", "use pending, firing or resolved")
                })?),
            },
            severity: match self.severity.as_deref() {
                None | Some("") => None,
                Some(key) => Some(Severity::from_key(key).ok_or_else(|| {
                    platform::Error::invalid("severity", "use info, warning or critical")
                })?),
            },
            monitor: self.monitor,
            acknowledged: self.acknowledged,
        })
    }

    fn page(&self) -> protocol::views::PageRequest {
        PageQuery {
            page: self.page,
            per_page: self.per_page,
        }
        .into()
    }
}

/// The project's alerts, its workspaces' included, newest first.
#[utoipa::path(get, path = "/projects/{project}/alerts", tag = "monitoring",
    params(("project" = ProjectId, Path), AlertQuery),
    responses((status = 200, body = Page<AlertView>), (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn list_project_alerts(
    State(api): State<Api>,
    ApiActor(actor): ApiActor,
    Path(project): Path<ProjectId>,
    Query(q): Query<AlertQuery>,
) -> Result<Json<Page<AlertView>>, ApiError> {
    Ok(Json(
        alerts::list(
            &api.platform,
            &actor,
            Scope::Project(project),
            q.filter()?,
            q.page(),
        )
        .await?,
    ))
}

#[utoipa::path(get, path = "/alerts/{alert}", tag = "monitoring",
    params(("alert" = AlertId, Path)),
    responses((status = 200, body = AlertDetail), (status = 404, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn get_alert(
    State(api): State<Api>,
    ApiActor(actor): ApiActor,
    Path(id): Path<AlertId>,
) -> Result<Json<AlertDetail>, ApiError> {
    Ok(Json(alerts::get(&api.platform, &actor, id).await?))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct AckBody {
    pub comment: String,
}

/// Acknowledges an open alert: it is not repeated any more.
#[utoipa::path(post, path = "/alerts/{alert}/acknowledge", tag = "monitoring",
    params(("alert" = AlertId, Path)), request_body = AckBody,
    responses((status = 200, body = AlertView), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn acknowledge_alert(
    State(api): State<Api>,
    ApiActor(actor): ApiActor,
    Path(id): Path<AlertId>,
    Json(body): Json<AckBody>,
) -> Result<Json<AlertView>, ApiError> {
    Ok(Json(
        alerts::acknowledge(&api.platform, &actor, id, &body.comment).await?,
    ))
}

#[utoipa::path(get, path = "/projects/{project}/silences", tag = "monitoring",
    params(("project" = ProjectId, Path)),
    responses((status = 200, body = [SilenceView]), (status = 404, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn list_silences(
    State(api): State<Api>,
    ApiActor(actor): ApiActor,
    Path(project): Path<ProjectId>,
) -> Result<Json<Vec<SilenceView>>, ApiError> {
    Ok(Json(
        alerts::list_silences(&api.platform, &actor, project).await?,
    ))
}

#[utoipa::path(post, path = "/projects/{project}/silences", tag = "monitoring",
    params(("project" = ProjectId, Path)), request_body = NewSilence,
    responses((status = 201, body = SilenceView), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn create_silence(
    State(api): State<Api>,
    ApiActor(actor): ApiActor,
    Path(project): Path<ProjectId>,
    Json(body): Json<NewSilence>,
) -> Result<(StatusCode, Json<SilenceView>), ApiError> {
    Ok((
        StatusCode::CREATED,
        Json(alerts::create_silence(&api.platform, &actor, project, body).await?),
    ))
}

/// Ends a silence now.
#[utoipa::path(delete, path = "/silences/{silence}", tag = "monitoring",
    params(("silence" = SilenceId, Path)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn expire_silence(
    State(api): State<Api>,
    ApiActor(actor): ApiActor,
    Path(id): Path<SilenceId>,
) -> Result<StatusCode, ApiError> {
    alerts::expire_silence(&api.platform, &actor, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
