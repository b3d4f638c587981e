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

    proptest::proptest! {
        #[test]
        fn any_input_becomes_a_safe_name_or_nothing(raw in "\\PC{0,80}") {
            let name = workspace_name(&raw);
            proptest::prop_assert!(name.len() <= super::MAX_WORKSPACE_NAME);
            proptest::prop_assert!(name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'));
            proptest::prop_assert!(!name.contains("--"));
            proptest::prop_assert!(!name.ends_with('-'));
            proptest::prop_assert!(name.is_empty() || name.as_bytes()[0].is_ascii_lowercase());
            // Sanitising is idempotent: a safe name stays as it is.
            proptest::prop_assert_eq!(workspace_name(&name), name.clone());
        }

        #[test]
        fn safe_names_are_kept(name in "[a-z][a-z0-9]{0,10}(-[a-z0-9]{1,8}){0,3}") {
            proptest::prop_assert_eq!(workspace_name(&name), name);
        }
    }
}
