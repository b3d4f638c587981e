//! Label and field selectors, in their query-string form and as
//! `metav1.LabelSelector` objects (for PodDisruptionBudgets).

use serde_json::Value;

use crate::error::ApiError;

#[derive(Debug, Clone, PartialEq)]
enum Requirement {
    Equals(String, String),
    NotEquals(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    DoesNotExist(String),
}

/// A parsed selector: every requirement must hold.
#[derive(Debug, Clone, Default)]
pub(crate) struct Selector(Vec<Requirement>);

/// Splits on commas outside parentheses.
fn terms(text: &str) -> Vec<&str> {
    let mut terms = Vec::new();
    let (mut depth, mut start) = (0usize, 0usize);
    for (i, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                terms.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    terms.push(&text[start..]);
    terms
        .into_iter()
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .collect()
}

fn set_values(text: &str) -> Option<Vec<String>> {
    let inner = text.trim().strip_prefix('(')?.strip_suffix(')')?;
    Some(
        inner
            .split(',')
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
            .collect(),
    )
}

fn parse_term(term: &str) -> Option<Requirement> {
    if let Some((key, value)) = term.split_once("!=") {
        return Some(Requirement::NotEquals(
            key.trim().into(),
            value.trim().into(),
        ));
    }
    if let Some((key, value)) = term.split_once("==") {
        return Some(Requirement::Equals(key.trim().into(), value.trim().into()));
    }
    if let Some((key, value)) = term.split_once('=') {
        return Some(Requirement::Equals(key.trim().into(), value.trim().into()));
    }
    if let Some((key, rest)) = term.split_once(" notin ") {
        return Some(Requirement::NotIn(key.trim().into(), set_values(rest)?));
    }
    if let Some((key, rest)) = term.split_once(" in ") {
        return Some(Requirement::In(key.trim().into(), set_values(rest)?));
    }
    if let Some(key) = term.strip_prefix('!') {
        return Some(Requirement::DoesNotExist(key.trim().into()));
    }
    if term.contains(' ') || term.contains('(') {
        return None;
    }
    Some(Requirement::Exists(term.into()))
}

impl Selector {
    pub fn parse(text: &str) -> Result<Selector, ApiError> {
        terms(text)
            .into_iter()
            .map(|t| {
                parse_term(t).ok_or_else(|| {
                    ApiError::bad_request(format!("unable to parse requirement: {t:?}"))
                })
            })
            .collect::<Result<_, _>>()
            .map(Selector)
    }

    /// A `metav1.LabelSelector` object. An absent selector matches nothing
    /// and an empty one everything, as for PodDisruptionBudgets.
    pub fn from_label_selector(selector: &Value) -> Option<Selector> {
        let object = selector.as_object()?;
        let mut requirements = Vec::new();
        if let Some(labels) = object.get("matchLabels").and_then(Value::as_object) {
            for (key, value) in labels {
                requirements.push(Requirement::Equals(
                    key.clone(),
                    value.as_str().unwrap_or_default().into(),
                ));
            }
        }
        if let Some(expressions) = object.get("matchExpressions").and_then(Value::as_array) {
            for expression in expressions {
                let key = expression["key"].as_str().unwrap_or_default().to_string();
                let values: Vec<String> = expression["values"]
                    .as_array()
                    .map(|vs| {
                        vs.iter()
                            .filter_map(|v| v.as_str().map(String::from))
                            .collect()
                    })
                    .unwrap_or_default();
                requirements.push(match expression["operator"].as_str() {
                    Some("In") => Requirement::In(key, values),
                    Some("NotIn") => Requirement::NotIn(key, values),
                    Some("Exists") => Requirement::Exists(key),
                    Some("DoesNotExist") => Requirement::DoesNotExist(key),
                    _ => return None,
                });
            }
        }
        Some(Selector(requirements))
    }

    /// Checks against labels: `lookup` yields a label's value.
    fn matches_with<'a>(&self, lookup: impl Fn(&str) -> Option<&'a str>) -> bool {
        self.0.iter().all(|r| match r {
            Requirement::Equals(k, v) => lookup(k) == Some(v.as_str()),
            Requirement::NotEquals(k, v) => lookup(k) != Some(v.as_str()),
            Requirement::In(k, vs) => lookup(k).is_some_and(|x| vs.iter().any(|v| v == x)),
            Requirement::NotIn(k, vs) => lookup(k).is_none_or(|x| !vs.iter().any(|v| v == x)),
            Requirement::Exists(k) => lookup(k).is_some(),
            Requirement::DoesNotExist(k) => lookup(k).is_none(),
        })
    }

    pub fn matches_labels(&self, obj: &Value) -> bool {
        let labels = obj.pointer("/metadata/labels");
        self.matches_with(|key| labels.and_then(|l| l.get(key)).and_then(Value::as_str))
    }

    /// Field selectors name dotted paths (`metadata.name`, `spec.nodeName`,
    /// `status.phase`); a missing field reads as the empty string.
    pub fn matches_fields(&self, obj: &Value) -> bool {
        self.0.iter().all(|r| {
            let field = |path: &str| field_value(obj, path);
            match r {
                Requirement::Equals(k, v) => field(k) == *v,
                Requirement::NotEquals(k, v) => field(k) != *v,
                Requirement::In(k, vs) => vs.contains(&field(k)),
                Requirement::NotIn(k, vs) => !vs.contains(&field(k)),
                Requirement::Exists(k) => !field(k).is_empty(),
                Requirement::DoesNotExist(k) => field(k).is_empty(),
            }
        })
    }
}

fn field_value(obj: &Value, path: &str) -> String {
    let pointer = format!("/{}", path.replace('.', "/"));
    match obj.pointer(&pointer) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    }
}

/// The label and field selectors of a list or watch request.
#[derive(Debug, Clone, Default)]
pub(crate) struct Filter {
    labels: Selector,
    fields: Selector,
}

impl Filter {
    pub fn new(
        label_selector: Option<&str>,
        field_selector: Option<&str>,
    ) -> Result<Filter, ApiError> {
        Ok(Filter {
            labels: Selector::parse(label_selector.unwrap_or(""))?,
            fields: Selector::parse(field_selector.unwrap_or(""))?,
        })
    }

    pub fn matches(&self, obj: &Value) -> bool {
        self.labels.matches_labels(obj) && self.fields.matches_fields(obj)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn label_selector_forms() {
        let obj = json!({"metadata": {"name": "a", "labels": {"app": "web", "tier": "front"}}});
        let check = |s: &str| Selector::parse(s).unwrap().matches_labels(&obj);
        assert!(check("app=web"));
        assert!(check("app==web,tier"));
        assert!(check("app!=db"));
        assert!(!check("app!=web"));
        assert!(check("!missing"));
        assert!(!check("missing"));
        assert!(check("tier in (front, back)"));
        assert!(check("tier notin (back),app"));
        assert!(check(""));
    }

    #[test]
    fn field_selector_paths() {
        let obj = json!({"metadata": {"name": "a", "namespace": "n"}, "spec": {"nodeName": "w1"}});
        let check = |s: &str| Selector::parse(s).unwrap().matches_fields(&obj);
        assert!(check("metadata.name=a,metadata.namespace=n"));
        assert!(check("spec.nodeName=w1"));
        assert!(check("status.phase!=Succeeded"));
        assert!(!check("metadata.name=b"));
    }

    #[test]
    fn label_selector_objects() {
        let obj = json!({"metadata": {"labels": {"app": "web"}}});
        let sel = |v: Value| {
            Selector::from_label_selector(&v)
                .unwrap()
                .matches_labels(&obj)
        };
        assert!(sel(json!({"matchLabels": {"app": "web"}})));
        assert!(sel(json!({})));
        assert!(!sel(
            json!({"matchExpressions": [{"key": "app", "operator": "NotIn", "values": ["web"]}]})
        ));
        assert!(Selector::from_label_selector(&Value::Null).is_none());
    }
}
