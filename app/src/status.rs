//! The portal's own health, as the home page shows it.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::AppError;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusReport {
    pub version: String,
    pub database: DatabaseState,
    /// RFC 3339, UTC, to the second.
    pub checked_at: String,
    pub uptime_seconds: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum DatabaseState {
    Ready { migrations: usize },
    MigrationsPending { pending: usize },
    Unreachable,
}

#[server(endpoint = "portal_status")]
pub async fn portal_status() -> Result<StatusReport, AppError> {
    use platform::db::{Readiness, readiness};
    use time::format_description::well_known::Rfc3339;

    let platform = crate::server::platform()?;
    let database = match readiness(platform.db()).await {
        Readiness::Ready { migrations } => DatabaseState::Ready { migrations },
        Readiness::MigrationsPending { pending } => DatabaseState::MigrationsPending {
            pending: pending.len(),
        },
        Readiness::DatabaseUnreachable { reason } => {
            tracing::warn!(%reason, "status check: database unreachable");
            DatabaseState::Unreachable
        }
    };
    let now = time::OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .map_err(AppError::internal)?;
    Ok(StatusReport {
        version: env!("CARGO_PKG_VERSION").to_string(),
        database,
        checked_at: now.format(&Rfc3339).map_err(AppError::internal)?,
        uptime_seconds: (now - platform.started_at()).whole_seconds().max(0) as u64,
    })
}

/// "3 d 4 h", "12 min", "40 s".
pub fn human_duration(seconds: u64) -> String {
    match seconds {
        s if s < 60 => format!("{s} s"),
        s if s < 3600 => format!("{} min", s / 60),
        s if s < 86_400 => format!("{} h {} min", s / 3600, (s % 3600) / 60),
        s => format!("{} d {} h", s / 86_400, (s % 86_400) / 3600),
    }
}

#[cfg(test)]
mod tests {
    use super::human_duration;

    #[test]
    fn durations_read_naturally() {
        assert_eq!(human_duration(0), "0 s");
        assert_eq!(human_duration(59), "59 s");
        assert_eq!(human_duration(61), "1 min");
        assert_eq!(human_duration(3 * 3600 + 5 * 60), "3 h 5 min");
        assert_eq!(human_duration(2 * 86_400 + 7200), "2 d 2 h");
    }
}
