//! Load balancers at project or workspace scope: the list, one balancer's
//! page, and the create/change form.
//!
//! The form sends listeners and targets as text, one per line, so it stays
//! a plain keyboard-usable form; the lines are parsed here and every error
//! names the form field (and the line) it is about.

// A form's fields are a server function's arguments.
#![allow(clippy::too_many_arguments)]

use std::net::IpAddr;

use leptos::prelude::*;
use protocol::ids::{LoadBalancerId, ProjectId, WorkspaceId};
use protocol::views::load_balancers::{
    Algorithm, HealthCheck, HealthProtocol, Listener, ListenerProtocol, LoadBalancerView,
};
use serde::{Deserialize, Serialize};

use crate::error::AppError;

/// The form fields, in the order they appear.
pub const FORM_FIELDS: &[&str] = &[
    "name",
    "listeners",
    "targets",
    "algorithm",
    "health_protocol",
    "health_port",
    "health_path",
    "health_interval",
    "health_timeout",
    "healthy_threshold",
    "unhealthy_threshold",
];

/// The load balancers of a project or a workspace, with what the caller may
/// do and the hosts that can be targets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoadBalancersSection {
    pub items: Vec<LoadBalancerView>,
    pub can_manage: bool,
    /// Host names usable as targets in this scope.
    pub hosts: Vec<String>,
}

/// One load balancer's page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoadBalancerDetails {
    pub lb: LoadBalancerView,
    pub can_manage: bool,
    pub hosts: Vec<String>,
}

#[server]
pub async fn list_load_balancers(
    #[server(default)] project: Option<ProjectId>,
    #[server(default)] workspace: Option<WorkspaceId>,
) -> Result<LoadBalancersSection, AppError> {
    let (ctx, actor) = crate::server::signed_in().await?;
    let scope = server::scope(project, workspace)?;
    let items = platform::loadbalancers::list(&ctx.platform, &actor, scope).await?;
    let can_manage = server::can_manage(ctx.db(), &actor, scope).await;
    let hosts = server::hosts(ctx.db(), &actor, scope)
        .await?
        .into_iter()
        .map(|h| h.hostname)
        .collect();
    Ok(LoadBalancersSection {
        items,
        can_manage,
        hosts,
    })
}

#[server]
pub async fn get_load_balancer(
    load_balancer: LoadBalancerId,
) -> Result<LoadBalancerDetails, AppError> {
    let (ctx, actor) = crate::server::signed_in().await?;
    let lb = platform::loadbalancers::get(&ctx.platform, &actor, load_balancer).await?;
    let scope = server::scope_of(&lb);
    let can_manage = server::can_manage(ctx.db(), &actor, scope).await;
    let hosts = server::hosts(ctx.db(), &actor, scope)
        .await?
        .into_iter()
        .map(|h| h.hostname)
        .collect();
    Ok(LoadBalancerDetails {
        lb,
        can_manage,
        hosts,
    })
}

/// Creates a load balancer (`load_balancer` unset) in the project or
/// workspace given, or changes `load_balancer` to what the form says.
#[server]
pub async fn save_load_balancer(
    #[server(default)] project: Option<ProjectId>,
    #[server(default)] workspace: Option<WorkspaceId>,
    #[server(default)] load_balancer: Option<LoadBalancerId>,
    name: String,
    listeners: String,
    targets: String,
    algorithm: String,
    health_protocol: String,
    #[server(default)] health_port: Option<String>,
    #[server(default)] health_path: Option<String>,
    health_interval: String,
    health_timeout: String,
    healthy_threshold: String,
    unhealthy_threshold: String,
) -> Result<LoadBalancerId, AppError> {
    let (ctx, actor) = crate::server::signed_in().await?;
    let scope = match load_balancer {
        Some(id) => {
            server::scope_of(&platform::loadbalancers::get(&ctx.platform, &actor, id).await?)
        }
        None => server::scope(project, workspace)?,
    };
    let form = Form {
        name,
        listeners,
        targets,
        algorithm,
        health_protocol,
        health_port: health_port.unwrap_or_default(),
        health_path: health_path.unwrap_or_default(),
        health_interval,
        health_timeout,
        healthy_threshold,
        unhealthy_threshold,
    };
    let hosts = server::hosts(ctx.db(), &actor, scope).await?;
    let new = form.parse(|name| hosts.iter().find(|h| h.hostname == name).map(|h| h.id))?;
    let saved = match load_balancer {
        Some(id) => platform::loadbalancers::update(&ctx.platform, &actor, id, &new).await,
        None => platform::loadbalancers::create(&ctx.platform, &actor, scope, &new).await,
    };
    Ok(saved.map_err(|e| form_error(AppError::from(e)))?.id)
}

#[server]
pub async fn delete_load_balancer(load_balancer: LoadBalancerId) -> Result<(), AppError> {
    let (ctx, actor) = crate::server::signed_in().await?;
    Ok(platform::loadbalancers::delete(&ctx.platform, &actor, load_balancer).await?)
}

#[cfg(feature = "ssr")]
mod server {
    use platform::authz::{Actor, Permission, Resource, authorize};
    use platform::loadbalancers::Scope;
    use protocol::ids::{ProjectId, WorkspaceId};
    use protocol::views::HostView;
    use protocol::views::load_balancers::LoadBalancerView;
    use sqlx::PgPool;

    use crate::error::AppError;

    pub fn scope(
        project: Option<ProjectId>,
        workspace: Option<WorkspaceId>,
    ) -> Result<Scope, AppError> {
        match (project, workspace) {
            (_, Some(w)) => Ok(Scope::Workspace(w)),
            (Some(p), None) => Ok(Scope::Project(p)),
            (None, None) => Err(AppError::invalid(
                "project",
                "say which project or workspace the load balancer belongs to",
            )),
        }
    }

    pub fn scope_of(lb: &LoadBalancerView) -> Scope {
        match lb.workspace {
            Some(w) => Scope::Workspace(w),
            None => Scope::Project(lb.project),
        }
    }

    pub async fn can_manage(db: &PgPool, actor: &Actor, scope: Scope) -> bool {
        let resource = match scope {
            Scope::Project(p) => Resource::Project(p),
            Scope::Workspace(w) => Resource::Workspace(w),
        };
        authorize(db, actor, Permission::LoadBalancerManage, resource)
            .await
            .is_ok()
    }

    /// The hosts that may be targets: the workspace's, or those of every
    /// workspace of the project the caller can see.
    pub async fn hosts(
        db: &PgPool,
        actor: &Actor,
        scope: Scope,
    ) -> Result<Vec<HostView>, AppError> {
        match scope {
            Scope::Workspace(w) => Ok(platform::hosts::list(db, actor, w).await?),
            Scope::Project(p) => {
                let mut hosts = Vec::new();
                for w in platform::workspaces::list(db, actor, p).await? {
                    // Workspaces the caller may list but not read hosts of
                    // contribute nothing rather than failing the page.
                    if let Ok(mut more) = platform::hosts::list(db, actor, w.id).await {
                        hosts.append(&mut more);
                    }
                }
                Ok(hosts)
            }
        }
    }
}

/// The form as typed.
#[derive(Debug, Clone, Default)]
pub struct Form {
    pub name: String,
    pub listeners: String,
    pub targets: String,
    pub algorithm: String,
    pub health_protocol: String,
    pub health_port: String,
    pub health_path: String,
    pub health_interval: String,
    pub health_timeout: String,
    pub healthy_threshold: String,
    pub unhealthy_threshold: String,
}

impl Form {
    /// The load balancer the form describes; `host` finds a host's id by name.
    pub fn parse(
        &self,
        host: impl Fn(&str) -> Option<protocol::ids::HostId>,
    ) -> Result<protocol::views::load_balancers::NewLoadBalancer, AppError> {
        use protocol::views::load_balancers::{NewLoadBalancer, TargetRef};
        let listeners = parse_listeners(&self.listeners)?;
        let mut targets = Vec::new();
        for (i, line) in lines(&self.targets) {
            let target = match line.parse::<IpAddr>() {
                Ok(address) => TargetRef::Ip { address },
                Err(_) => match host(line) {
                    Some(host) => TargetRef::Host { host },
                    None => {
                        return Err(AppError::invalid(
                            "targets",
                            format!(
                                "line {}: {line:?} is neither an IP address nor a host here",
                                i + 1
                            ),
                        ));
                    }
                },
            };
            if targets.contains(&target) {
                return Err(AppError::invalid(
                    "targets",
                    format!("line {}: {line} is listed twice", i + 1),
                ));
            }
            targets.push(target);
        }
        let algorithm = match self.algorithm.as_str() {
            "round_robin" | "" => Algorithm::RoundRobin,
            "least_connections" => Algorithm::LeastConnections,
            _ => {
                return Err(AppError::invalid(
                    "algorithm",
                    "choose round robin or least connections",
                ));
            }
        };
        let protocol = match self.health_protocol.as_str() {
            "tcp" | "" => HealthProtocol::Tcp,
            "http" => HealthProtocol::Http,
            _ => return Err(AppError::invalid("health_protocol", "choose TCP or HTTP")),
        };
        let port = match self.health_port.trim() {
            "" => None,
            p => Some(p.parse::<u16>().ok().filter(|p| *p > 0).ok_or_else(|| {
                AppError::invalid(
                    "health_port",
                    "a port from 1 to 65535, or empty for the first listener's target port",
                )
            })?),
        };
        let path = match self.health_path.trim() {
            "" => "/".to_string(),
            p if p.starts_with('/') => p.to_string(),
            _ => return Err(AppError::invalid("health_path", "a path starting with /")),
        };
        let health = HealthCheck {
            protocol,
            port,
            path,
            interval_seconds: number(&self.health_interval, "health_interval")?,
            timeout_seconds: number(&self.health_timeout, "health_timeout")?,
            healthy_threshold: number(&self.healthy_threshold, "healthy_threshold")?,
            unhealthy_threshold: number(&self.unhealthy_threshold, "unhealthy_threshold")?,
        };
        Ok(NewLoadBalancer {
            name: self.name.trim().to_string(),
            listeners,
            targets,
            algorithm,
            health,
        })
    }
}

/// Non-empty lines with their index, comments (`#`) dropped.
fn lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines()
        .enumerate()
        .map(|(i, l)| (i, l.split('#').next().unwrap_or("").trim()))
        .filter(|(_, l)| !l.is_empty())
}

fn number(text: &str, field: &'static str) -> Result<u32, AppError> {
    text.trim()
        .parse()
        .map_err(|_| AppError::invalid(field, "a whole number"))
}

/// `http 80 8080`, `tcp 5432` (same target port), `http 80 -> 8080`.
pub fn parse_listeners(text: &str) -> Result<Vec<Listener>, AppError> {
    let mut listeners = Vec::new();
    for (i, line) in lines(text) {
        let bad = |why: &str| {
            AppError::invalid(
                "listeners",
                format!("line {}: {why} (e.g. \"http 80 8080\")", i + 1),
            )
        };
        let words: Vec<&str> = line
            .split(|c: char| c.is_whitespace() || c == ':')
            .filter(|w| !w.is_empty() && *w != "->" && *w != "→")
            .collect();
        let (protocol, ports) = match words.split_first() {
            Some((&"tcp", rest)) => (ListenerProtocol::Tcp, rest),
            Some((&"http", rest)) => (ListenerProtocol::Http, rest),
            _ => return Err(bad("start with tcp or http")),
        };
        let port = |w: &str| w.parse::<u16>().ok().filter(|p| *p > 0);
        let (port, target_port) = match ports {
            [p] => (port(p), port(p)),
            [p, t] => (port(p), port(t)),
            _ => return Err(bad("give a port and optionally a target port")),
        };
        match (port, target_port) {
            (Some(port), Some(target_port)) => listeners.push(Listener {
                protocol,
                port,
                target_port,
            }),
            _ => return Err(bad("ports are numbers from 1 to 65535")),
        }
    }
    if listeners.is_empty() {
        return Err(AppError::invalid("listeners", "add at least one listener"));
    }
    Ok(listeners)
}

/// The listeners as the form shows them.
pub fn listeners_text(listeners: &[Listener]) -> String {
    listeners
        .iter()
        .map(|l| {
            let protocol = match l.protocol {
                ListenerProtocol::Tcp => "tcp",
                ListenerProtocol::Http => "http",
            };
            format!("{protocol} {} {}", l.port, l.target_port)
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// An error from the domain, moved onto the form field it is about: the
/// domain names fields of the JSON shape (`listeners[1].port`,
/// `health.interval_seconds`), the form has one field per group.
pub fn form_error(e: AppError) -> AppError {
    let AppError::Invalid { field, message } = &e else {
        return e;
    };
    let (form_field, item) = match field.as_str() {
        f if f.starts_with("listeners") => ("listeners", item_of(f)),
        f if f.starts_with("targets") => ("targets", item_of(f)),
        "health.interval_seconds" => ("health_interval", None),
        "health.timeout_seconds" => ("health_timeout", None),
        "health.healthy_threshold" => ("healthy_threshold", None),
        "health.unhealthy_threshold" => ("unhealthy_threshold", None),
        "health.path" => ("health_path", None),
        "health.port" => ("health_port", None),
        f if f.starts_with("health") => ("health_protocol", None),
        _ => return e,
    };
    let message = match item {
        Some(n) => format!("line {}: {message}", n + 1),
        None => message.clone(),
    };
    AppError::invalid(form_field, message)
}

/// `listeners[2].port` → 2.
fn item_of(field: &str) -> Option<usize> {
    let start = field.find('[')? + 1;
    let end = field[start..].find(']')? + start;
    field[start..end].parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listeners_parse_with_or_without_target_port() {
        let l = parse_listeners("http 80 8080\ntcp 5432\n# comment\nhttp 443 -> 8443").unwrap();
        assert_eq!(l.len(), 3);
        assert_eq!((l[0].port, l[0].target_port), (80, 8080));
        assert_eq!((l[1].port, l[1].target_port), (5432, 5432));
        assert_eq!(l[1].protocol, ListenerProtocol::Tcp);
        assert_eq!((l[2].port, l[2].target_port), (443, 8443));
        assert_eq!(parse_listeners(&listeners_text(&l)).unwrap(), l);
    }

    #[test]
    fn bad_listener_lines_name_the_field_and_line() {
        for text in [
            "udp 53",
            "http",
            "http 0",
            "http 70000",
            "http 80 81 82",
            "",
        ] {
            let e = parse_listeners(text).unwrap_err();
            assert!(e.for_field("listeners").is_some(), "{text}: {e:?}");
        }
        let e = parse_listeners("http 80\nhttp x").unwrap_err();
        assert!(e.for_field("listeners").unwrap().starts_with("line 2"));
    }

    #[test]
    fn domain_errors_land_on_form_fields() {
        let e = form_error(AppError::invalid("listeners[1].port", "duplicate port"));
        assert_eq!(
            e.for_field("listeners").as_deref(),
            Some("line 2: duplicate port")
        );
        let e = form_error(AppError::invalid("health.interval_seconds", "at least 1 s"));
        assert_eq!(
            e.for_field("health_interval").as_deref(),
            Some("at least 1 s")
        );
        let e = form_error(AppError::invalid("name", "taken"));
        assert_eq!(e.for_field("name").as_deref(), Some("taken"));
    }

    #[test]
    fn targets_are_hosts_or_addresses() {
        let form = Form {
            name: "web".into(),
            listeners: "http 80 8080".into(),
            targets: "web-1\n10.0.0.5\n".into(),
            health_interval: "5".into(),
            health_timeout: "2".into(),
            healthy_threshold: "2".into(),
            unhealthy_threshold: "3".into(),
            ..Form::default()
        };
        let host: protocol::ids::HostId = "0190d7f2-0000-7000-8000-000000000001".parse().unwrap();
        let new = form.parse(|n| (n == "web-1").then_some(host)).unwrap();
        assert_eq!(new.targets.len(), 2);
        let e = Form {
            targets: "nope".into(),
            ..form
        }
        .parse(|_| None)
        .unwrap_err();
        assert!(e.for_field("targets").unwrap().contains("neither"));
    }
}
