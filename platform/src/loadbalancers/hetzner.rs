//! The Hetzner Cloud load balancer backend: one Hetzner load balancer per
//! [`BalancerSpec`], through API v1 (`/load_balancers` and its actions),
//! with the compute provider's client, so token, base URL and error
//! mapping are shared.
//!
//! Applying converges rather than assumes. A load balancer is created
//! with every service and target in one request; afterwards each
//! difference between Hetzner and the spec is fixed with the documented
//! action (`add_service`, `update_service`, `delete_service`, `add_target`,
//! `remove_target`, `change_algorithm`, `change_type`,
//! `attach_to_network`) and reported in [`Applied::corrected`]. Hetzner
//! runs actions asynchronously and refuses a second one while the first
//! runs (409 `locked`), so each action is awaited before the next.
//!
//! A load balancer found by name is only taken over when it carries the
//! [`OWNER_LABEL`] of the same spec id, so a retry after a lost answer finds
//! its own load balancer and never adopts someone else's.
//!
//! Mapping: each listener is a service (`tcp` or `http`) whose health check
//! probes `health.port`, or the first listener's target port. Hetzner has
//! one threshold (`retries`) for both directions, so
//! `unhealthy_threshold` is sent and `healthy_threshold` has no effect.
//! Targets are `ip` targets; `use_private_ip` exists only for `server`
//! targets, so with a network configured the load balancer is attached to
//! it and reaches private addresses directly. The location cannot change
//! after creation: a load balancer elsewhere is left where it is.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::time::Duration;

use protocol::views::load_balancers::{Algorithm, HealthProtocol, ListenerProtocol, TargetHealth};
use reqwest::{Method, StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::time::Instant;

use super::spec::{Applied, BalancerSpec, BalancerStatus, TargetStatus};
use crate::providers::ProviderError;
use crate::providers::hetzner_cloud::{HetznerCloud, Reply};

/// Label on every load balancer this backend creates: the spec's id.
pub const OWNER_LABEL: &str = "loopback-load-balancer";
/// The HTTP health check answers counted as healthy: 2xx and 3xx, as the
/// product documents.
const STATUS_CODES: [&str; 2] = ["2??", "3??"];
/// How long one action may run before apply gives up (retryably).
const ACTION_DEADLINE: Duration = Duration::from_secs(120);
/// How long to wait out another action's lock.
const LOCK_DEADLINE: Duration = Duration::from_secs(60);
const FIRST_POLL: Duration = Duration::from_millis(50);
const MAX_POLL: Duration = Duration::from_secs(1);

/// Runs load balancers in one Hetzner Cloud project. Cheap to clone.
#[derive(Debug, Clone)]
pub struct HetznerBalancers {
    cloud: HetznerCloud,
    location: String,
    load_balancer_type: String,
    network: Option<i64>,
}

// The API's shapes, reduced to what converging needs; unknown fields are
// ignored.

#[derive(Debug, Deserialize)]
struct OneBalancer {
    load_balancer: BalancerView,
}

#[derive(Debug, Deserialize)]
struct Balancers {
    #[serde(default)]
    load_balancers: Vec<BalancerView>,
}

#[derive(Debug, Deserialize)]
struct Created {
    load_balancer: BalancerView,
    action: ActionView,
}

#[derive(Debug, Deserialize)]
struct BalancerView {
    id: u64,
    name: String,
    #[serde(default)]
    public_net: PublicNet,
    #[serde(default)]
    private_net: Vec<PrivateNet>,
    load_balancer_type: Option<TypeView>,
    location: Option<TypeView>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    services: Vec<Service>,
    #[serde(default)]
    targets: Vec<TargetView>,
    algorithm: AlgorithmView,
}

#[derive(Debug, Default, Deserialize)]
struct PublicNet {
    ipv4: Option<AddressView>,
}

#[derive(Debug, Deserialize)]
struct AddressView {
    ip: Option<IpAddr>,
}

#[derive(Debug, Deserialize)]
struct PrivateNet {
    network: i64,
}

#[derive(Debug, Deserialize)]
struct TypeView {
    name: String,
}

#[derive(Debug, Deserialize)]
struct AlgorithmView {
    #[serde(rename = "type")]
    kind: String,
}

/// A service as sent and as compared; what Hetzner adds (the service's
/// `http` block, the check's domain and response) is not managed here.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Service {
    protocol: String,
    listen_port: u16,
    destination_port: u16,
    #[serde(default)]
    proxyprotocol: bool,
    health_check: Check,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Check {
    protocol: String,
    port: u16,
    interval: u32,
    timeout: u32,
    retries: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    http: Option<CheckHttp>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct CheckHttp {
    path: String,
    #[serde(default)]
    status_codes: Vec<String>,
}

#[derive(Debug, Deserialize)]
struct TargetView {
    #[serde(rename = "type")]
    kind: String,
    ip: Option<TargetIp>,
    server: Option<ServerRef>,
    label_selector: Option<Selector>,
    #[serde(default)]
    health_status: Vec<HealthView>,
}

#[derive(Debug, Deserialize)]
struct TargetIp {
    ip: String,
}

#[derive(Debug, Deserialize)]
struct ServerRef {
    id: u64,
}

#[derive(Debug, Deserialize)]
struct Selector {
    selector: String,
}

#[derive(Debug, Deserialize)]
struct HealthView {
    listen_port: u16,
    status: String,
}

#[derive(Debug, Deserialize)]
struct OneAction {
    action: ActionView,
}

#[derive(Debug, Deserialize)]
struct ActionView {
    id: u64,
    command: String,
    status: String,
    error: Option<ActionError>,
}

#[derive(Debug, Deserialize)]
struct ActionError {
    code: String,
    message: String,
}

/// What the spec asks of Hetzner, in Hetzner's terms.
#[derive(Debug)]
struct Desired {
    services: BTreeMap<u16, Service>,
    targets: BTreeSet<IpAddr>,
    algorithm: &'static str,
}

impl TargetView {
    fn address(&self) -> Option<IpAddr> {
        if self.kind != "ip" {
            return None;
        }
        self.ip.as_ref().and_then(|ip| ip.ip.parse().ok())
    }

    /// The body that removes this target, and how to name it, for a
    /// target of any type.
    fn removal(&self) -> (Value, String) {
        if let Some(ip) = &self.ip {
            return (
                json!({ "type": "ip", "ip": { "ip": ip.ip } }),
                format!("target {}", ip.ip),
            );
        }
        if let Some(server) = &self.server {
            return (
                json!({ "type": "server", "server": { "id": server.id } }),
                format!("target server {}", server.id),
            );
        }
        if let Some(selector) = &self.label_selector {
            return (
                json!({ "type": "label_selector",
                        "label_selector": { "selector": selector.selector } }),
                format!("target label selector {:?}", selector.selector),
            );
        }
        (
            json!({ "type": self.kind }),
            format!("a {} target", self.kind),
        )
    }
}

impl HetznerBalancers {
    /// `location` is where new load balancers go (e.g. `fsn1`),
    /// `load_balancer_type` their size (e.g. `lb11`); with `network` they
    /// are attached to that private network.
    pub fn new(
        cloud: HetznerCloud,
        location: String,
        load_balancer_type: String,
        network: Option<i64>,
    ) -> Self {
        Self {
            cloud,
            location,
            load_balancer_type,
            network,
        }
    }

    /// Creates the load balancer when `existing` is None or names one that
    /// is gone, else converges it to `spec`.
    pub async fn apply(
        &self,
        spec: &BalancerSpec,
        existing: Option<&str>,
    ) -> Result<Applied, ProviderError> {
        // Checked before anything is sent, so a bad spec never costs a
        // request.
        let want = desired(spec)?;
        let known = match existing {
            Some(reference) => self.get(reference).await?,
            None => None,
        };
        let found = match known {
            Some(lb) => Some(lb),
            None => self.adopt(spec).await?,
        };
        match found {
            Some(lb) => self.converge(lb, &want).await,
            None => self.create(spec, &want).await,
        }
    }

    /// What Hetzner reports now; None when the load balancer is gone.
    pub async fn observe(
        &self,
        backend_ref: &str,
    ) -> Result<Option<BalancerStatus>, ProviderError> {
        Ok(self.get(backend_ref).await?.map(|lb| status(&lb)))
    }

    /// Deletes the load balancer; one already gone is the outcome wanted.
    pub async fn delete(&self, backend_ref: &str) -> Result<(), ProviderError> {
        if !is_id(backend_ref) {
            return Ok(());
        }
        let reply = self
            .unlocked(Method::DELETE, &["load_balancers", backend_ref], None)
            .await?;
        if reply.status == StatusCode::NOT_FOUND {
            return Ok(());
        }
        reply
            .check()
            .map_err(|e| within(e, &format!("deleting load balancer {backend_ref}")))?;
        tracing::info!(
            load_balancer = backend_ref,
            "Hetzner Cloud deleted a load balancer"
        );
        Ok(())
    }

    async fn get(&self, reference: &str) -> Result<Option<BalancerView>, ProviderError> {
        // Hetzner's ids are numbers; anything else names no load balancer.
        if !is_id(reference) {
            return Ok(None);
        }
        let reply = self
            .cloud
            .send(Method::GET, &["load_balancers", reference], &[], None)
            .await?;
        if reply.status == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let found: OneBalancer = reply
            .check()
            .map_err(|e| within(e, &format!("reading load balancer {reference}")))?
            .json()?;
        Ok(Some(found.load_balancer))
    }

    /// The load balancer named after the spec, when it is this spec's
    /// (names are unique per project).
    async fn adopt(&self, spec: &BalancerSpec) -> Result<Option<BalancerView>, ProviderError> {
        let found: Balancers = self
            .cloud
            .send(
                Method::GET,
                &["load_balancers"],
                &[("name", spec.name.as_str())],
                None,
            )
            .await?
            .check()
            .map_err(|e| within(e, "listing load balancers"))?
            .json()?;
        let Some(lb) = found
            .load_balancers
            .into_iter()
            .find(|lb| lb.name == spec.name)
        else {
            return Ok(None);
        };
        let owner = spec.id.to_string();
        if lb.labels.get(OWNER_LABEL) != Some(&owner) {
            return Err(ProviderError::Rejected(format!(
                "Hetzner Cloud already has a load balancer named {:?} (id {}) that was not \
                 created for load balancer {owner}",
                spec.name, lb.id
            )));
        }
        Ok(Some(lb))
    }

    async fn create(&self, spec: &BalancerSpec, want: &Desired) -> Result<Applied, ProviderError> {
        let targets: Vec<Value> = want.targets.iter().map(|ip| ip_target(*ip)).collect();
        let mut body = json!({
            "name": spec.name,
            "load_balancer_type": self.load_balancer_type,
            "location": self.location,
            "algorithm": { "type": want.algorithm },
            "services": want.services.values().collect::<Vec<_>>(),
            "targets": targets,
            "labels": { OWNER_LABEL: spec.id.to_string() },
            "public_interface": true,
        });
        if let Some(network) = self.network {
            body["network"] = json!(network);
        }
        let reply = self
            .cloud
            .send(Method::POST, &["load_balancers"], &[], Some(body))
            .await?;
        if reply.status == StatusCode::CONFLICT && error_code(&reply) == "uniqueness_error" {
            // A concurrent attempt won the race for the name: its load
            // balancer is the one asked for.
            if let Some(lb) = self.adopt(spec).await? {
                return self.converge(lb, want).await;
            }
        }
        let created: Created = reply
            .check()
            .map_err(|e| within(e, &format!("creating load balancer {:?}", spec.name)))?
            .json()?;
        let lb = created.load_balancer;
        tracing::info!(load_balancer = lb.id, name = %spec.name, "Hetzner Cloud created a load balancer");
        // Until it finishes, any change would be refused as locked.
        self.wait(created.action).await?;
        Ok(Applied {
            backend_ref: lb.id.to_string(),
            status: status(&lb),
            corrected: Vec::new(),
        })
    }

    /// Fixes every difference with one action each. Removals go first so a
    /// smaller type or a full load balancer has room for what is added.
    async fn converge(&self, lb: BalancerView, want: &Desired) -> Result<Applied, ProviderError> {
        let id = lb.id.to_string();
        let mut corrected = Vec::new();

        if lb.algorithm.kind != want.algorithm {
            self.act(&id, "change_algorithm", json!({ "type": want.algorithm }))
                .await?;
            corrected.push(format!(
                "algorithm was {} instead of {}",
                lb.algorithm.kind, want.algorithm
            ));
        }
        if let Some(network) = self.network
            && !lb.private_net.iter().any(|n| n.network == network)
        {
            self.act(&id, "attach_to_network", json!({ "network": network }))
                .await?;
            corrected.push(format!(
                "load balancer was not attached to network {network}"
            ));
        }
        for service in &lb.services {
            if !want.services.contains_key(&service.listen_port) {
                let body = json!({ "listen_port": service.listen_port });
                self.act(&id, "delete_service", body).await?;
                corrected.push(format!(
                    "service on port {} was not in the spec",
                    service.listen_port
                ));
            }
        }
        let mut present = BTreeSet::new();
        for target in &lb.targets {
            match target.address() {
                Some(ip) if want.targets.contains(&ip) => {
                    present.insert(ip);
                }
                _ => {
                    let (body, name) = target.removal();
                    self.act(&id, "remove_target", body).await?;
                    corrected.push(format!("{name} was not in the spec"));
                }
            }
        }
        let kind = lb.load_balancer_type.as_ref().map(|t| t.name.as_str());
        if let Some(kind) = kind
            && kind != self.load_balancer_type
        {
            let body = json!({ "load_balancer_type": self.load_balancer_type });
            self.act(&id, "change_type", body).await?;
            corrected.push(format!(
                "type was {kind} instead of {}",
                self.load_balancer_type
            ));
        }
        if let Some(location) = &lb.location
            && location.name != self.location
        {
            // Hetzner cannot move a load balancer; recreating it would
            // change its address under the users' feet.
            tracing::warn!(
                load_balancer = lb.id,
                at = %location.name,
                configured = %self.location,
                "a Hetzner Cloud load balancer is not in the configured location; left there"
            );
        }
        for (port, service) in &want.services {
            match lb.services.iter().find(|s| s.listen_port == *port) {
                None => {
                    self.act(&id, "add_service", json!(service)).await?;
                    corrected.push(format!("service on port {port} was missing"));
                }
                Some(have) => {
                    let differences = differences(service, have);
                    if !differences.is_empty() {
                        self.act(&id, "update_service", json!(service)).await?;
                        corrected.push(format!(
                            "service on port {port} differed: {}",
                            differences.join(", ")
                        ));
                    }
                }
            }
        }
        for ip in want.targets.difference(&present) {
            self.act(&id, "add_target", ip_target(*ip)).await?;
            corrected.push(format!("target {ip} was missing"));
        }

        let status = if corrected.is_empty() {
            status(&lb)
        } else {
            for change in &corrected {
                tracing::info!(load_balancer = lb.id, %change, "corrected a Hetzner Cloud load balancer");
            }
            let now = self.get(&id).await?.ok_or_else(|| {
                ProviderError::Unavailable(format!(
                    "load balancer {id} disappeared while it was being converged"
                ))
            })?;
            status(&now)
        };
        Ok(Applied {
            backend_ref: id,
            status,
            corrected,
        })
    }

    /// Runs one action and waits for it to finish.
    async fn act(&self, id: &str, action: &str, body: Value) -> Result<(), ProviderError> {
        let started: OneAction = self
            .unlocked(
                Method::POST,
                &["load_balancers", id, "actions", action],
                Some(body),
            )
            .await?
            .check()
            .map_err(|e| within(e, &format!("{action} on load balancer {id}")))?
            .json()?;
        self.wait(started.action).await
    }

    /// Sends the request, waiting out another action's lock on the load
    /// balancer (409 `locked`).
    async fn unlocked(
        &self,
        method: Method,
        path: &[&str],
        body: Option<Value>,
    ) -> Result<Reply, ProviderError> {
        let deadline = Instant::now() + LOCK_DEADLINE;
        let mut pause = FIRST_POLL;
        loop {
            let reply = self
                .cloud
                .send(method.clone(), path, &[], body.clone())
                .await?;
            if reply.status != StatusCode::CONFLICT || error_code(&reply) != "locked" {
                return Ok(reply);
            }
            if Instant::now() + pause > deadline {
                return Err(ProviderError::Unavailable(format!(
                    "{method} {}: the load balancer stayed locked by another action for {}s",
                    path.join("/"),
                    LOCK_DEADLINE.as_secs()
                )));
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(MAX_POLL);
        }
    }

    /// Polls the action until it succeeds or fails.
    async fn wait(&self, mut action: ActionView) -> Result<(), ProviderError> {
        let deadline = Instant::now() + ACTION_DEADLINE;
        let mut pause = FIRST_POLL;
        loop {
            match action.status.as_str() {
                "success" => return Ok(()),
                "error" => {
                    let (code, message) = action
                        .error
                        .as_ref()
                        .map_or(("unknown", "no reason given"), |e| {
                            (e.code.as_str(), e.message.as_str())
                        });
                    // The request was accepted; carrying it out failed on
                    // Hetzner's side, which a later attempt may get past.
                    return Err(ProviderError::Unavailable(format!(
                        "Hetzner Cloud action {} ({}) failed: {code}: {message}",
                        action.command, action.id
                    )));
                }
                _ => {}
            }
            if Instant::now() + pause > deadline {
                return Err(ProviderError::Unavailable(format!(
                    "Hetzner Cloud action {} ({}) was still running after {}s",
                    action.command,
                    action.id,
                    ACTION_DEADLINE.as_secs()
                )));
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(MAX_POLL);
            let action_id = action.id.to_string();
            let polled: OneAction = self
                .cloud
                .send(
                    Method::GET,
                    &["load_balancers", "actions", &action_id],
                    &[],
                    None,
                )
                .await?
                .check()
                .map_err(|e| within(e, &format!("reading action {action_id}")))?
                .json()?;
            action = polled.action;
        }
    }
}

fn is_id(reference: &str) -> bool {
    !reference.is_empty() && reference.len() <= 20 && reference.bytes().all(|b| b.is_ascii_digit())
}

fn error_code(reply: &Reply) -> String {
    serde_json::from_slice::<Value>(&reply.body)
        .ok()
        .and_then(|v| v["error"]["code"].as_str().map(str::to_string))
        .unwrap_or_default()
}

/// Says what was being done, keeping the kind of failure.
fn within(error: ProviderError, doing: &str) -> ProviderError {
    use ProviderError as E;
    let say = |detail: String| format!("{doing}: {detail}");
    match error {
        E::Unauthorized(d) => E::Unauthorized(say(d)),
        E::NoCapacity(d) => E::NoCapacity(say(d)),
        E::InvalidProfile(d) => E::InvalidProfile(say(d)),
        E::Quota(d) => E::Quota(say(d)),
        E::RateLimited(d) => E::RateLimited(say(d)),
        E::Unavailable(d) => E::Unavailable(say(d)),
        E::Unreachable(d) => E::Unreachable(say(d)),
        E::Rejected(d) => E::Rejected(say(d)),
    }
}

fn ip_target(ip: IpAddr) -> Value {
    json!({ "type": "ip", "ip": { "ip": ip.to_string() } })
}

/// The spec in Hetzner's terms, refusing what Hetzner would refuse with
/// the spec's own field names.
fn desired(spec: &BalancerSpec) -> Result<Desired, ProviderError> {
    let reject = |why: String| Err(ProviderError::Rejected(why));
    if spec.name.trim().is_empty() {
        return reject("a load balancer needs a name".into());
    }
    let health = &spec.health;
    if health.interval_seconds == 0 {
        return reject("health.interval_seconds must be at least 1".into());
    }
    if health.timeout_seconds == 0 {
        return reject("health.timeout_seconds must be at least 1".into());
    }
    if health.port == Some(0) {
        return reject("health.port must be between 1 and 65535".into());
    }
    if health.protocol == HealthProtocol::Http && !health.path.starts_with('/') {
        return reject(format!("health.path {:?} must start with /", health.path));
    }
    let mut services = BTreeMap::new();
    for (i, listener) in spec.listeners.iter().enumerate() {
        if listener.port == 0 {
            return reject(format!("listeners[{i}].port must be between 1 and 65535"));
        }
        if listener.target_port == 0 {
            return reject(format!(
                "listeners[{i}].target_port must be between 1 and 65535"
            ));
        }
        let probed = health
            .port
            .or(spec.listeners.first().map(|l| l.target_port))
            .unwrap_or(listener.target_port);
        let service = Service {
            protocol: match listener.protocol {
                ListenerProtocol::Tcp => "tcp",
                ListenerProtocol::Http => "http",
            }
            .into(),
            listen_port: listener.port,
            destination_port: listener.target_port,
            proxyprotocol: false,
            health_check: Check {
                protocol: match health.protocol {
                    HealthProtocol::Tcp => "tcp",
                    HealthProtocol::Http => "http",
                }
                .into(),
                port: probed,
                interval: health.interval_seconds,
                timeout: health.timeout_seconds,
                retries: health.unhealthy_threshold,
                http: (health.protocol == HealthProtocol::Http).then(|| CheckHttp {
                    path: health.path.clone(),
                    status_codes: STATUS_CODES.iter().map(|c| c.to_string()).collect(),
                }),
            },
        };
        if services.insert(listener.port, service).is_some() {
            return reject(format!(
                "listeners[{i}].port {} is used by another listener",
                listener.port
            ));
        }
    }
    Ok(Desired {
        services,
        targets: spec.targets.iter().copied().collect(),
        algorithm: match spec.algorithm {
            Algorithm::RoundRobin => "round_robin",
            Algorithm::LeastConnections => "least_connections",
        },
    })
}

/// What differs between the wanted service and Hetzner's, in words.
fn differences(want: &Service, have: &Service) -> Vec<String> {
    let mut found = Vec::new();
    let mut compare = |what: &str, want: String, have: String| {
        if want != have {
            found.push(format!("{what} {have} instead of {want}"));
        }
    };
    compare("protocol", want.protocol.clone(), have.protocol.clone());
    compare(
        "target port",
        want.destination_port.to_string(),
        have.destination_port.to_string(),
    );
    compare(
        "proxy protocol",
        want.proxyprotocol.to_string(),
        have.proxyprotocol.to_string(),
    );
    let (w, h) = (&want.health_check, &have.health_check);
    compare(
        "health check protocol",
        w.protocol.clone(),
        h.protocol.clone(),
    );
    compare("health check port", w.port.to_string(), h.port.to_string());
    compare(
        "health check interval",
        w.interval.to_string(),
        h.interval.to_string(),
    );
    compare(
        "health check timeout",
        w.timeout.to_string(),
        h.timeout.to_string(),
    );
    compare(
        "health check retries",
        w.retries.to_string(),
        h.retries.to_string(),
    );
    // Hetzner may keep an http block on a tcp check; only an http check
    // reads it.
    if let Some(wanted) = &w.http {
        let path = h.http.as_ref().map_or("none", |x| x.path.as_str());
        compare("health check path", wanted.path.clone(), path.to_string());
        let codes = |c: &[String]| {
            c.iter()
                .collect::<BTreeSet<_>>()
                .into_iter()
                .cloned()
                .collect::<Vec<_>>()
                .join(",")
        };
        let have_codes = h
            .http
            .as_ref()
            .map_or(String::new(), |x| codes(&x.status_codes));
        compare(
            "health check status codes",
            codes(&wanted.status_codes),
            have_codes,
        );
    }
    found
}

fn health(word: &str) -> TargetHealth {
    match word {
        "healthy" => TargetHealth::Healthy,
        "unhealthy" => TargetHealth::Unhealthy,
        _ => TargetHealth::Unknown,
    }
}

/// The worse of two readings, for two listeners sharing a target port.
fn worse(a: TargetHealth, b: TargetHealth) -> TargetHealth {
    let rank = |h| match h {
        TargetHealth::Healthy => 0,
        TargetHealth::Unknown => 1,
        TargetHealth::Unhealthy => 2,
    };
    if rank(b) > rank(a) { b } else { a }
}

/// The address and, per `ip` target and target port, the health Hetzner
/// reports on the listen ports forwarding there.
fn status(lb: &BalancerView) -> BalancerStatus {
    let mut targets: BTreeMap<(IpAddr, u16), TargetHealth> = BTreeMap::new();
    for target in &lb.targets {
        let Some(address) = target.address() else {
            continue;
        };
        for service in &lb.services {
            let reading = target
                .health_status
                .iter()
                .find(|h| h.listen_port == service.listen_port)
                .map_or(TargetHealth::Unknown, |h| health(&h.status));
            targets
                .entry((address, service.destination_port))
                .and_modify(|h| *h = worse(*h, reading))
                .or_insert(reading);
        }
    }
    BalancerStatus {
        address: lb.public_net.ipv4.as_ref().and_then(|v| v.ip),
        targets: targets
            .into_iter()
            .map(|((address, port), health)| TargetStatus {
                address,
                port,
                health,
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use protocol::ids::LoadBalancerId;
    use protocol::views::load_balancers::{HealthCheck, Listener};

    use super::*;

    fn spec() -> BalancerSpec {
        BalancerSpec {
            id: LoadBalancerId::new(),
            name: "lb-1".into(),
            listeners: vec![
                Listener {
                    protocol: ListenerProtocol::Tcp,
                    port: 443,
                    target_port: 30443,
                },
                Listener {
                    protocol: ListenerProtocol::Http,
                    port: 80,
                    target_port: 30080,
                },
            ],
            targets: vec!["10.0.0.2".parse().unwrap()],
            algorithm: Algorithm::LeastConnections,
            health: HealthCheck::default(),
        }
    }

    #[test]
    fn listeners_become_services_probing_the_first_target_port() {
        let want = desired(&spec()).unwrap();
        let http = &want.services[&80];
        assert_eq!(http.protocol, "http");
        assert_eq!(http.destination_port, 30080);
        assert_eq!(http.health_check.port, 30443);
        assert_eq!(http.health_check.retries, 3);
        assert!(http.health_check.http.is_none());
        assert_eq!(want.algorithm, "least_connections");
    }

    #[test]
    fn http_checks_carry_path_and_status_codes() {
        let mut spec = spec();
        spec.health.protocol = HealthProtocol::Http;
        spec.health.path = "/healthz".into();
        spec.health.port = Some(8080);
        let want = desired(&spec).unwrap();
        let check = &want.services[&443].health_check;
        assert_eq!(check.port, 8080);
        let http = check.http.as_ref().unwrap();
        assert_eq!(http.path, "/healthz");
        assert_eq!(http.status_codes, ["2??", "3??"]);
        let body = serde_json::to_value(&want.services[&443]).unwrap();
        assert_eq!(body["health_check"]["http"]["path"], "/healthz");
    }

    #[test]
    fn bad_specs_name_the_field() {
        let mut twice = spec();
        twice.listeners[1].port = 443;
        let err = desired(&twice).unwrap_err();
        assert!(err.to_string().contains("listeners[1].port"), "{err}");
        let mut zero = spec();
        zero.listeners[0].target_port = 0;
        let err = desired(&zero).unwrap_err();
        assert!(
            err.to_string().contains("listeners[0].target_port"),
            "{err}"
        );
        let mut path = spec();
        path.health.protocol = HealthProtocol::Http;
        path.health.path = "healthz".into();
        assert!(
            desired(&path)
                .unwrap_err()
                .to_string()
                .contains("health.path")
        );
    }

    #[test]
    fn differences_are_worded_for_people() {
        let want = desired(&spec()).unwrap().services[&443].clone();
        let mut have = want.clone();
        have.destination_port = 8443;
        have.health_check.interval = 30;
        assert_eq!(
            differences(&want, &have),
            [
                "target port 8443 instead of 30443",
                "health check interval 30 instead of 15"
            ]
        );
        assert!(differences(&want, &want).is_empty());
    }

    #[test]
    fn shared_target_ports_report_the_worse_health() {
        let lb: BalancerView = serde_json::from_value(json!({
            "id": 7, "name": "lb-1",
            "public_net": { "ipv4": { "ip": "203.0.113.7" } },
            "algorithm": { "type": "round_robin" },
            "services": [
                { "protocol": "tcp", "listen_port": 80, "destination_port": 8080, "proxyprotocol": false,
                  "health_check": { "protocol": "tcp", "port": 8080, "interval": 15, "timeout": 10, "retries": 3 } },
                { "protocol": "tcp", "listen_port": 81, "destination_port": 8080, "proxyprotocol": false,
                  "health_check": { "protocol": "tcp", "port": 8080, "interval": 15, "timeout": 10, "retries": 3 } },
            ],
            "targets": [
                { "type": "ip", "ip": { "ip": "10.0.0.2" },
                  "health_status": [{ "listen_port": 80, "status": "healthy" },
                                    { "listen_port": 81, "status": "unhealthy" }] },
                { "type": "server", "server": { "id": 3 }, "health_status": [] },
            ],
        }))
        .unwrap();
        let status = status(&lb);
        assert_eq!(status.address, Some("203.0.113.7".parse().unwrap()));
        assert_eq!(
            status.targets,
            [TargetStatus {
                address: "10.0.0.2".parse().unwrap(),
                port: 8080,
                health: TargetHealth::Unhealthy,
            }]
        );
    }

    #[test]
    fn context_keeps_the_kind_of_failure() {
        let err = within(ProviderError::RateLimited("slow down".into()), "adding");
        assert!(err.is_retryable());
        assert_eq!(
            err.to_string(),
            "the provider rate-limited the request: adding: slow down"
        );
    }
}
