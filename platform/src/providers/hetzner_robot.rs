//! Hetzner Robot (dedicated servers) through the Robot webservice: HTTP
//! basic auth, form-encoded POSTs, JSON answers.
//!
//! Dedicated servers are ordered, not created: [`HetznerRobot::create_server`]
//! places an order (`POST /order/server/transaction`) and returns a
//! [`Server`] whose id is the order's transaction id prefixed `tx-`, in
//! [`ServerStatus::Creating`]. Hetzner delivers the server later (minutes
//! to days); [`HetznerRobot::server`] with that `tx-` id polls the order
//! and, once it is `ready` with a server number, returns the real server,
//! whose id is the server number. Callers must store that id from then on.
//!
//! Names: a Robot order has no field for a server name (an order comment
//! would make Hetzner process the order by hand), so the name is given to
//! the server (`server_name`) when its order is seen ready. Until then the
//! link from name to order lives only in this process (`ORDERS`):
//! calling `create_server` again for the same name in the same process
//! finds the pending order, but after a restart, or when the answer to the
//! order was lost, only the `tx-` id the caller stored leads to it. A
//! caller holding a `tx-` id must poll it, not order again.
//!
//! Profile parameters read from [`CreateServer::parameters`]: `product`
//! (required, a product id such as `EX44`) and `location` (e.g. `FSN1`).
//! User data and labels have no counterpart in a Robot order and are not
//! sent.

use std::fmt;
use std::sync::{Arc, LazyLock, Mutex, MutexGuard, PoisonError};

use reqwest::{Method, StatusCode};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use url::Url;

use super::hetzner_cloud::{Reply, checked_base, endpoint, exchange, http_client, parse_json};
use super::{CreateServer, PowerAction, ProviderError, Server, ServerStatus, excerpt};

pub const HETZNER_ROBOT_API: &str = "https://robot-ws.your-server.de/";

/// Marks an id as an order's transaction id rather than a server number.
pub const ORDER_PREFIX: &str = "tx-";
/// Order fields whose rejection means the compute profile is wrong.
const PROFILE_FIELDS: &[&str] = &["product_id", "location", "dist", "lang", "arch"];

/// A client for one Robot webservice user. Cheap to clone.
#[derive(Clone)]
pub struct HetznerRobot {
    http: reqwest::Client,
    base: Url,
    user: Arc<str>,
    password: Arc<str>,
}

impl fmt::Debug for HetznerRobot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The password must never reach a log; the user name may.
        f.debug_struct("HetznerRobot")
            .field("base", &self.base.as_str())
            .field("user", &&*self.user)
            .finish_non_exhaustive()
    }
}

/// Orders placed by this process and the names they are for, across
/// clients: a client is built per use from stored settings, an order
/// outlives it.
static ORDERS: LazyLock<Mutex<Vec<PlacedOrder>>> = LazyLock::new(Mutex::default);

struct PlacedOrder {
    /// Base URL and user: transaction ids are only unique per account.
    account: String,
    transaction: String,
    name: String,
}

fn orders() -> MutexGuard<'static, Vec<PlacedOrder>> {
    // A panic elsewhere must not make every later order fail.
    ORDERS.lock().unwrap_or_else(PoisonError::into_inner)
}

#[derive(Debug, Deserialize)]
struct ServerWrap {
    server: ServerView,
}

#[derive(Debug, Deserialize)]
struct ServerView {
    server_number: u64,
    #[serde(default)]
    server_name: Option<String>,
    server_ip: Option<String>,
    server_ipv6_net: Option<String>,
    status: String,
    #[serde(default)]
    cancelled: bool,
}

#[derive(Debug, Deserialize)]
struct TransactionWrap {
    transaction: TransactionView,
}

#[derive(Debug, Deserialize)]
struct TransactionView {
    id: String,
    status: String,
    server_number: Option<u64>,
}

/// The webservice's documented error object.
#[derive(Debug, Deserialize)]
struct ErrorBody {
    error: ApiError,
}

#[derive(Debug, Deserialize)]
struct ApiError {
    code: String,
    message: String,
    missing: Option<Vec<String>>,
    invalid: Option<Vec<String>>,
    max_request: Option<u64>,
    interval: Option<u64>,
}

/// What an id given to us names.
enum Id<'a> {
    Server(u64),
    Order(&'a str),
    /// Neither form: no server can have it.
    Invalid,
}

fn parse_id(id: &str) -> Id<'_> {
    let digits = |s: &str| !s.is_empty() && s.len() <= 20 && s.bytes().all(|b| b.is_ascii_digit());
    if let Some(tx) = id.strip_prefix(ORDER_PREFIX) {
        let valid = !tx.is_empty()
            && tx.len() <= 64
            && tx.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
        return if valid { Id::Order(tx) } else { Id::Invalid };
    }
    match id.parse() {
        Ok(number) if digits(id) => Id::Server(number),
        _ => Id::Invalid,
    }
}

/// Where an id leads now.
enum Target {
    Server(u64),
    /// An order not delivered yet.
    Pending(String),
    /// No server: unknown, cancelled order, or not an id at all.
    Gone,
}

/// Robot's reading of an answer (the error object differs from Cloud's).
trait RobotReply: Sized {
    fn checked(self) -> Result<Self, ProviderError>;
    fn parsed<T: DeserializeOwned>(&self) -> Result<T, ProviderError>;
}

impl RobotReply for Reply {
    fn checked(self) -> Result<Self, ProviderError> {
        if self.status.is_success() {
            Ok(self)
        } else {
            Err(classify(self.status, &self.body))
        }
    }

    fn parsed<T: DeserializeOwned>(&self) -> Result<T, ProviderError> {
        parse_json(self, "Hetzner Robot")
    }
}

impl HetznerRobot {
    /// `base` is normally [`HETZNER_ROBOT_API`]; tests point it at a fake.
    pub fn new(base: Url, user: &str, password: &str) -> Result<Self, ProviderError> {
        let user = user.trim();
        if user.is_empty() || password.is_empty() {
            return Err(ProviderError::Unauthorized(
                "no Hetzner Robot webservice user and password configured".into(),
            ));
        }
        Ok(Self {
            http: http_client()?,
            base: checked_base(base, "Hetzner Robot")?,
            user: user.into(),
            password: password.into(),
        })
    }

    /// Checks the credentials by listing the servers.
    pub async fn test_connection(&self) -> Result<(), ProviderError> {
        self.list().await.map(|_| ())
    }

    /// Returns the server of this name, or the order this process placed
    /// for it, or orders one (see the module documentation for what the
    /// returned `tx-` id means).
    pub async fn create_server(&self, spec: &CreateServer) -> Result<Server, ProviderError> {
        // Checked before anything is sent, so a bad profile never costs a
        // request.
        let form = order_form(spec)?;
        if let Some(existing) = self.find_by_name(&spec.name).await? {
            return Ok(existing);
        }
        if let Some(pending) = self.placed_order(&spec.name).await? {
            return Ok(pending);
        }
        let reply = self
            .send(
                Method::POST,
                &["order", "server", "transaction"],
                Some(&form),
            )
            .await?;
        if reply.status == StatusCode::NOT_FOUND {
            // The only thing an order names is the product.
            return Err(ProviderError::InvalidProfile(describe_reply(&reply)));
        }
        let placed: TransactionWrap = reply.checked()?.parsed()?;
        let transaction = placed.transaction;
        tracing::info!(transaction = %transaction.id, name = %spec.name, "Hetzner Robot accepted a server order");
        self.remember(&transaction.id, &spec.name);
        let id = transaction.id.clone();
        self.server_of_order(transaction, &spec.name)
            .await?
            .ok_or_else(|| ProviderError::Rejected(format!("Hetzner cancelled the order {id}")))
    }

    /// The server with this number, or the state of the order with this
    /// `tx-` id; None when there is neither (an unknown id, a cancelled
    /// order).
    pub async fn server(&self, id: &str) -> Result<Option<Server>, ProviderError> {
        match parse_id(id) {
            Id::Server(number) => Ok(self.server_view(number).await?.map(Into::into)),
            Id::Order(tx) => match self.transaction(tx).await? {
                Some(view) => {
                    let name = self.name_of(tx).unwrap_or_default();
                    self.server_of_order(view, &name).await
                }
                None => Ok(None),
            },
            Id::Invalid => Ok(None),
        }
    }

    /// The server of this name that is not cancelled, if any.
    pub async fn find_by_name(&self, name: &str) -> Result<Option<Server>, ProviderError> {
        Ok(self
            .list()
            .await?
            .into_iter()
            .find(|s| !s.cancelled && s.server_name.as_deref() == Some(name))
            .map(Into::into))
    }

    /// Cancels the server with immediate effect; one already cancelled or
    /// gone is the outcome wanted. An order not delivered yet cannot be
    /// withdrawn here: that answers [`ProviderError::Unavailable`], to be
    /// tried again once the server exists.
    pub async fn delete_server(&self, id: &str) -> Result<(), ProviderError> {
        match self.resolve(id).await? {
            Target::Server(number) => self.cancel(number).await,
            Target::Pending(tx) => Err(ProviderError::Unavailable(format!(
                "the order {tx} is still in process; its server can be cancelled once delivered"
            ))),
            Target::Gone => Ok(()),
        }
    }

    /// Resets the hardware, or presses the power button.
    ///
    /// Robot has no separate on and off: [`PowerAction::On`] and
    /// [`PowerAction::Off`] both press the power button (`type=power`), which
    /// starts a server that is off and asks a running one to shut down
    /// (ACPI). Robot does not report whether a server is on, so calling Off
    /// on a server that is already off turns it on. [`PowerAction::Reset`]
    /// is a hardware reset (`type=hw`).
    pub async fn power(&self, id: &str, action: PowerAction) -> Result<(), ProviderError> {
        let number = match self.resolve(id).await? {
            Target::Server(number) => number,
            Target::Pending(tx) => {
                return Err(ProviderError::Unavailable(format!(
                    "the order {tx} is still in process; there is no server to power yet"
                )));
            }
            Target::Gone => {
                return Err(ProviderError::Rejected(format!(
                    "Hetzner Robot has no server {id:?}"
                )));
            }
        };
        let kind = match action {
            PowerAction::Reset => "hw",
            PowerAction::On | PowerAction::Off => "power",
        };
        let path = ["reset", &number.to_string()];
        self.send(Method::POST, &path, Some(&[("type", kind.to_string())]))
            .await?
            .checked()
            .map(|_| ())
    }

    async fn list(&self) -> Result<Vec<ServerView>, ProviderError> {
        let reply = self.send(Method::GET, &["server"], None).await?;
        // Robot answers 404 rather than an empty list to an account without
        // servers.
        if reply.status == StatusCode::NOT_FOUND {
            return Ok(Vec::new());
        }
        let servers: Vec<ServerWrap> = reply.checked()?.parsed()?;
        Ok(servers.into_iter().map(|w| w.server).collect())
    }

    async fn server_view(&self, number: u64) -> Result<Option<ServerView>, ProviderError> {
        let reply = self
            .send(Method::GET, &["server", &number.to_string()], None)
            .await?;
        if reply.status == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let found: ServerWrap = reply.checked()?.parsed()?;
        Ok(Some(found.server))
    }

    async fn transaction(&self, tx: &str) -> Result<Option<TransactionView>, ProviderError> {
        let reply = self
            .send(Method::GET, &["order", "server", "transaction", tx], None)
            .await?;
        if reply.status == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let found: TransactionWrap = reply.checked()?.parsed()?;
        Ok(Some(found.transaction))
    }

    /// The server an order stands for now: a `tx-` placeholder while in
    /// process, the delivered server (named `name`) once ready, None when
    /// cancelled.
    async fn server_of_order(
        &self,
        view: TransactionView,
        name: &str,
    ) -> Result<Option<Server>, ProviderError> {
        let placeholder = Server {
            id: format!("{ORDER_PREFIX}{}", view.id),
            name: name.to_string(),
            status: ServerStatus::Creating,
            ipv4: None,
            ipv6: None,
        };
        match (view.status.as_str(), view.server_number) {
            ("cancelled", _) => {
                self.forget(&view.id);
                Ok(None)
            }
            ("ready", Some(number)) => match self.server_view(number).await? {
                Some(server) => {
                    let server = self.named(server, name).await?;
                    // Named now, so found by name from here on.
                    self.forget(&view.id);
                    Ok(Some(server.into()))
                }
                // Delivered, but not listed yet.
                None => Ok(Some(placeholder)),
            },
            _ => Ok(Some(placeholder)),
        }
    }

    /// Gives a delivered server the name it was ordered for, so that
    /// [`HetznerRobot::find_by_name`] finds it from now on, in any process.
    async fn named(&self, server: ServerView, name: &str) -> Result<ServerView, ProviderError> {
        if name.is_empty() || server.server_name.as_deref() == Some(name) {
            return Ok(server);
        }
        let path = ["server", &server.server_number.to_string()];
        let renamed: ServerWrap = self
            .send(
                Method::POST,
                &path,
                Some(&[("server_name", name.to_string())]),
            )
            .await?
            .checked()?
            .parsed()?;
        tracing::info!(server = renamed.server.server_number, %name, "named a delivered Hetzner Robot server");
        Ok(renamed.server)
    }

    /// The first order this process placed for `name` that has not been
    /// cancelled.
    async fn placed_order(&self, name: &str) -> Result<Option<Server>, ProviderError> {
        for tx in self.orders_for(name) {
            let Some(view) = self.transaction(&tx).await? else {
                self.forget(&tx);
                continue;
            };
            if let Some(server) = self.server_of_order(view, name).await? {
                return Ok(Some(server));
            }
        }
        Ok(None)
    }

    async fn resolve(&self, id: &str) -> Result<Target, ProviderError> {
        Ok(match parse_id(id) {
            Id::Server(number) => Target::Server(number),
            Id::Order(tx) => match self.transaction(tx).await? {
                Some(view) if view.status == "cancelled" => Target::Gone,
                Some(TransactionView {
                    server_number: Some(number),
                    status,
                    ..
                }) if status == "ready" => Target::Server(number),
                Some(view) => Target::Pending(view.id),
                None => Target::Gone,
            },
            Id::Invalid => Target::Gone,
        })
    }

    async fn cancel(&self, number: u64) -> Result<(), ProviderError> {
        let form = [
            ("cancellation_date", "now".to_string()),
            // Keeping the rack space would be billed.
            ("reserve_location", "false".to_string()),
        ];
        let path = ["server", &number.to_string(), "cancellation"];
        let reply = self.send(Method::POST, &path, Some(&form)).await?;
        match reply.status {
            StatusCode::NOT_FOUND => Ok(()),
            // Refused as a conflict: fine when the conflict is an earlier
            // cancellation.
            StatusCode::CONFLICT => match self.server_view(number).await? {
                None => Ok(()),
                Some(server) if server.cancelled => Ok(()),
                Some(_) => Err(classify(reply.status, &reply.body)),
            },
            _ => reply.checked().map(|_| ()),
        }
    }

    fn account(&self) -> String {
        format!("{} {}", self.base, self.user)
    }

    fn remember(&self, tx: &str, name: &str) {
        orders().push(PlacedOrder {
            account: self.account(),
            transaction: tx.to_string(),
            name: name.to_string(),
        });
    }

    fn forget(&self, tx: &str) {
        let account = self.account();
        orders().retain(|o| !(o.account == account && o.transaction == tx));
    }

    fn name_of(&self, tx: &str) -> Option<String> {
        let account = self.account();
        orders()
            .iter()
            .find(|o| o.account == account && o.transaction == tx)
            .map(|o| o.name.clone())
    }

    fn orders_for(&self, name: &str) -> Vec<String> {
        let account = self.account();
        orders()
            .iter()
            .filter(|o| o.account == account && o.name == name)
            .map(|o| o.transaction.clone())
            .collect()
    }

    /// One request to `{base}{path...}`, the form (if any) URL-encoded; the
    /// answer is returned whatever its status.
    async fn send(
        &self,
        method: Method,
        path: &[&str],
        form: Option<&[(&str, String)]>,
    ) -> Result<Reply, ProviderError> {
        let url = endpoint(&self.base, path, &[])?;
        // basic_auth marks the header sensitive, keeping it out of debug
        // output.
        let mut request = self
            .http
            .request(method.clone(), url.clone())
            .basic_auth(&*self.user, Some(&*self.password));
        if let Some(form) = form {
            request = request.form(form);
        }
        let reply = exchange(request, &method, &url).await?;
        tracing::debug!(%method, %url, status = %reply.status, "hetzner robot");
        Ok(reply)
    }
}

impl From<ServerView> for Server {
    fn from(view: ServerView) -> Self {
        Server {
            id: view.server_number.to_string(),
            status: status(&view),
            name: view.server_name.unwrap_or_default(),
            ipv4: view.server_ip.and_then(|ip| ip.parse().ok()),
            ipv6: view.server_ipv6_net,
        }
    }
}

/// Robot reports delivery, not power: `ready` means delivered and is
/// reported as running.
fn status(view: &ServerView) -> ServerStatus {
    if view.cancelled {
        return ServerStatus::Other("cancelled".into());
    }
    match view.status.as_str() {
        "ready" => ServerStatus::Running,
        "in process" => ServerStatus::Creating,
        other => ServerStatus::Other(other.to_string()),
    }
}

/// The documented order form for this spec. `test=false` is explicit: a
/// test order is answered like a real one but delivers nothing.
fn order_form(spec: &CreateServer) -> Result<Vec<(&'static str, String)>, ProviderError> {
    if spec.name.trim().is_empty() {
        return Err(ProviderError::Rejected("a server needs a name".into()));
    }
    let parameter = |name: &str| {
        spec.parameters
            .get(name)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    };
    let product = parameter("product").ok_or_else(|| {
        ProviderError::InvalidProfile("the compute profile names no Robot product".into())
    })?;
    let mut form = vec![("product_id", product)];
    if let Some(location) = parameter("location") {
        form.push(("location", location));
    }
    form.push(("test", "false".into()));
    Ok(form)
}

/// Maps a failed answer to what it means for a host's lifecycle: the
/// documented error code decides, the status only when the code says
/// nothing we know.
fn classify(status: StatusCode, body: &[u8]) -> ProviderError {
    let Ok(ErrorBody { error }) = serde_json::from_slice::<ErrorBody>(body) else {
        return by_status(status)(format!("HTTP {}: {}", status.as_u16(), excerpt(body)));
    };
    let detail = describe(status, &error);
    let code = error.code.as_str();
    let about_profile = error
        .invalid
        .iter()
        .chain(error.missing.iter())
        .flatten()
        .any(|f| PROFILE_FIELDS.contains(&f.trim_end_matches("[]")));
    let variant: fn(String) -> ProviderError = match code {
        "RATE_LIMIT_EXCEEDED" => ProviderError::RateLimited,
        "UNAUTHORIZED" => ProviderError::Unauthorized,
        "INVALID_INPUT" if about_profile => ProviderError::InvalidProfile,
        "PRODUCT_NOT_FOUND" => ProviderError::InvalidProfile,
        // Robot documents no stock error for orders; these are the words it
        // uses for things that cannot be had right now.
        "PRODUCT_NOT_AVAILABLE" | "SERVER_NOT_AVAILABLE" => ProviderError::NoCapacity,
        c if c.contains("STOCK") => ProviderError::NoCapacity,
        c if c.ends_with("_LIMIT_REACHED") || c.ends_with("_LIMIT_EXCEEDED") => {
            ProviderError::Quota
        }
        _ => by_status(status),
    };
    variant(detail)
}

fn by_status(status: StatusCode) -> fn(String) -> ProviderError {
    match status.as_u16() {
        401 => ProviderError::Unauthorized,
        429 => ProviderError::RateLimited,
        500..=599 => ProviderError::Unavailable,
        _ => ProviderError::Rejected,
    }
}

fn describe(status: StatusCode, error: &ApiError) -> String {
    let mut text = format!("HTTP {} {}: {}", status.as_u16(), error.code, error.message);
    for (label, fields) in [("invalid", &error.invalid), ("missing", &error.missing)] {
        if let Some(fields) = fields.as_ref().filter(|f| !f.is_empty()) {
            text.push_str(&format!(" ({label}: {})", fields.join(", ")));
        }
    }
    if let (Some(max), Some(interval)) = (error.max_request, error.interval) {
        text.push_str(&format!(" (at most {max} requests per {interval} s)"));
    }
    text
}

fn describe_reply(reply: &Reply) -> String {
    match serde_json::from_slice::<ErrorBody>(&reply.body) {
        Ok(ErrorBody { error }) => describe(reply.status, &error),
        Err(_) => format!("HTTP {}: {}", reply.status.as_u16(), excerpt(&reply.body)),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde_json::{Value, json};

    use super::*;

    fn error(status: u16, body: Value) -> ProviderError {
        classify(
            StatusCode::from_u16(status).unwrap(),
            body.to_string().as_bytes(),
        )
    }

    fn robot(status: u16, code: &str) -> Value {
        json!({ "error": { "status": status, "code": code, "message": "words" } })
    }

    #[test]
    fn documented_codes_decide_before_the_status() {
        let cases = [
            (403, "RATE_LIMIT_EXCEEDED", "RateLimited"),
            (401, "UNAUTHORIZED", "Unauthorized"),
            (409, "PRODUCT_NOT_AVAILABLE", "NoCapacity"),
            (409, "VSWITCH_LIMIT_REACHED", "Quota"),
            (404, "SERVER_NOT_FOUND", "Rejected"),
            (500, "INTERNAL_ERROR", "Unavailable"),
            (503, "MAINTENANCE", "Unavailable"),
        ];
        for (status, code, expected) in cases {
            let err = error(status, robot(status, code));
            assert!(format!("{err:?}").starts_with(expected), "{code}: {err:?}");
            assert!(err.to_string().contains("words"), "{err}");
        }
    }

    #[test]
    fn invalid_input_about_the_product_is_an_invalid_profile() {
        let body = json!({ "error": {
            "status": 400, "code": "INVALID_INPUT", "message": "invalid input",
            "missing": null, "invalid": ["product_id"],
        }});
        let err = error(400, body);
        assert!(matches!(err, ProviderError::InvalidProfile(_)), "{err:?}");
        assert!(err.to_string().contains("product_id"), "{err}");
        let other = json!({ "error": {
            "status": 400, "code": "INVALID_INPUT", "message": "invalid input",
            "missing": ["type"], "invalid": null,
        }});
        assert!(matches!(error(400, other), ProviderError::Rejected(_)));
    }

    #[test]
    fn ids_are_numbers_or_orders() {
        assert!(matches!(parse_id("321"), Id::Server(321)));
        assert!(matches!(
            parse_id("tx-B20150121-344957-251478"),
            Id::Order("B20150121-344957-251478")
        ));
        assert!(matches!(parse_id("+321"), Id::Invalid));
        assert!(matches!(parse_id("tx-../x"), Id::Invalid));
        assert!(matches!(parse_id(""), Id::Invalid));
    }

    #[test]
    fn orders_follow_the_documented_form() {
        let spec = CreateServer {
            name: "host-1".into(),
            parameters: BTreeMap::from([
                ("product".into(), "EX44".into()),
                ("location".into(), "FSN1".into()),
            ]),
            user_data: String::new(),
            labels: BTreeMap::new(),
        };
        let form = order_form(&spec).unwrap();
        assert_eq!(
            form,
            vec![
                ("product_id", "EX44".to_string()),
                ("location", "FSN1".to_string()),
                ("test", "false".to_string()),
            ]
        );
        let no_product = CreateServer {
            parameters: BTreeMap::new(),
            ..spec
        };
        assert!(matches!(
            order_form(&no_product),
            Err(ProviderError::InvalidProfile(_))
        ));
    }

    #[test]
    fn the_password_stays_out_of_debug_output() {
        let base = Url::parse(HETZNER_ROBOT_API).unwrap();
        let client = HetznerRobot::new(base, "#ws+user", "s3cret").unwrap();
        let text = format!("{client:?}");
        assert!(!text.contains("s3cret"), "{text}");
        assert!(text.contains("#ws+user"), "{text}");
    }
}
