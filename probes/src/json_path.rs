//! The small JSONPath subset monitors use: `$`, `.field`, `['field']` and
//! `[index]`, e.g. `$.items[0].name`. No wildcards or filters: a monitor
//! compares one value.

use serde_json::Value;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Field(String),
    Index(usize),
}

/// Parses `path` into steps; the error says what is wrong for people.
pub fn parse(path: &str) -> Result<Vec<Step>, String> {
    let path = path.trim();
    let rest = path
        .strip_prefix('$')
        .ok_or_else(|| format!("JSON path {path:?} must start with $"))?;
    let mut steps = Vec::new();
    let mut chars = rest.char_indices().peekable();
    while let Some((at, c)) = chars.next() {
        match c {
            '.' => {
                let mut field = String::new();
                while let Some(&(_, c)) = chars.peek() {
                    if c == '.' || c == '[' {
                        break;
                    }
                    field.push(c);
                    chars.next();
                }
                if field.is_empty() {
                    return Err(format!("JSON path {path:?} has an empty field name"));
                }
                steps.push(Step::Field(field));
            }
            '[' => {
                let mut inner = String::new();
                let mut closed = false;
                let quoted = matches!(chars.peek(), Some((_, '\'' | '"')));
                let quote = if quoted {
                    chars.next().map(|(_, q)| q)
                } else {
                    None
                };
                while let Some((_, c)) = chars.next() {
                    if Some(c) == quote {
                        quoted_close(&mut chars, path)?;
                        closed = true;
                        break;
                    }
                    if quote.is_none() && c == ']' {
                        closed = true;
                        break;
                    }
                    inner.push(c);
                }
                if !closed {
                    return Err(format!("JSON path {path:?} has an unclosed ["));
                }
                if quote.is_some() {
                    steps.push(Step::Field(inner));
                } else {
                    let index = inner.trim().parse().map_err(|_| {
                        format!("JSON path {path:?}: [{inner}] is not an array index")
                    })?;
                    steps.push(Step::Index(index));
                }
            }
            other => {
                return Err(format!(
                    "JSON path {path:?}: unexpected {other:?} at position {}",
                    at + 1
                ));
            }
        }
    }
    Ok(steps)
}

fn quoted_close(
    chars: &mut std::iter::Peekable<std::str::CharIndices<'_>>,
    path: &str,
) -> Result<(), String> {
    match chars.next() {
        Some((_, ']')) => Ok(()),
        _ => Err(format!(
            "JSON path {path:?}: expected ] after a quoted name"
        )),
    }
}

/// The value at `steps`, if there is one.
pub fn select<'a>(value: &'a Value, steps: &[Step]) -> Option<&'a Value> {
    steps.iter().try_fold(value, |value, step| match step {
        Step::Field(name) => value.get(name.as_str()),
        Step::Index(index) => value.get(*index),
    })
}

/// The value as text to compare: strings without quotes, everything else
/// as JSON (`true`, `42`, `null`, `{"a":1}`).
pub fn text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_fields_indexes_and_quoted_names() {
        assert_eq!(parse("$"), Ok(vec![]));
        assert_eq!(
            parse("$.items[0].name"),
            Ok(vec![
                Step::Field("items".into()),
                Step::Index(0),
                Step::Field("name".into())
            ])
        );
        assert_eq!(
            parse("$['a.b'][2]"),
            Ok(vec![Step::Field("a.b".into()), Step::Index(2)])
        );
        assert!(parse("a.b").is_err());
        assert!(parse("$.").is_err());
        assert!(parse("$[x]").is_err());
        assert!(parse("$[0").is_err());
        assert!(parse("$x").is_err());
    }

    #[test]
    fn selects_and_renders_values() {
        let doc = json!({"status": "ok", "items": [{"n": 42}, {"up": true}]});
        let at = |p: &str| select(&doc, &parse(p).expect("path")).map(text);
        assert_eq!(at("$.status").as_deref(), Some("ok"));
        assert_eq!(at("$.items[0].n").as_deref(), Some("42"));
        assert_eq!(at("$.items[1].up").as_deref(), Some("true"));
        assert_eq!(at("$.items[2]"), None);
        assert_eq!(at("$.missing"), None);
    }
}
