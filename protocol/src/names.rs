//! Naming rules the browser shows before submitting and the server enforces.

/// Longest workspace name.
pub const MAX_WORKSPACE_NAME: usize = 40;

/// A safe resource name: lowercase letters, digits and dashes, starting with
/// a letter, no double or trailing dashes, at most 40 characters.
pub fn workspace_name(raw: &str) -> String {
    let mut out = String::new();
    for c in raw.trim().to_lowercase().chars() {
        let c = if c.is_ascii_lowercase() || c.is_ascii_digit() {
            c
        } else {
            '-'
        };
        if c == '-' && (out.is_empty() || out.ends_with('-')) {
            continue;
        }
        out.push(c);
    }
    let out = out.trim_start_matches(|c: char| c.is_ascii_digit() || c == '-');
    let mut out: String = out.chars().take(MAX_WORKSPACE_NAME).collect();
    while out.ends_with('-') {
        out.pop();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::workspace_name;

    #[test]
    fn names_become_safe_resource_names() {
        assert_eq!(workspace_name("My Cluster #1"), "my-cluster-1");
        assert_eq!(workspace_name("  --Prod__EU--  "), "prod-eu");
        assert_eq!(workspace_name("42 answers"), "answers");
        assert_eq!(workspace_name("Ünïcödé"), "n-c-d");
        assert_eq!(workspace_name(&"a".repeat(60)).len(), 40);
        assert_eq!(workspace_name("---"), "");
    }
}
