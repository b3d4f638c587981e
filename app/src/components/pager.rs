//! Page links for long lists, kept in the URL (`?page=N`) so a page can be
//! bookmarked and the back button works.

use leptos::prelude::*;
use leptos_router::components::A;
use leptos_router::hooks::use_query_map;

use super::BUTTON_SECONDARY;

/// The `page` query parameter, 1 when absent or nonsense.
pub fn page_from_query() -> Memo<u32> {
    let query = use_query_map();
    Memo::new(move |_| {
        query
            .read()
            .get("page")
            .and_then(|p| p.parse().ok())
            .filter(|p: &u32| *p >= 1)
            .unwrap_or(1)
    })
}

#[component]
pub fn Pager(page: u32, pages: u32, total: i64, #[prop(into)] base: String) -> impl IntoView {
    let href = move |p: u32| format!("{base}?page={p}");
    (pages > 1).then(|| {
        view! {
            <nav aria-label="Pages" class="mt-4 flex items-center justify-between text-sm text-slate-600">
                <span>{format!("Page {page} of {pages} · {total} in all")}</span>
                <span class="flex gap-2">
                    {(page > 1).then(|| view! { <A href=href(page - 1) attr:class=BUTTON_SECONDARY attr:rel="prev">"Previous"</A> })}
                    {(page < pages).then(|| view! { <A href=href(page + 1) attr:class=BUTTON_SECONDARY attr:rel="next">"Next"</A> })}
                </span>
            </nav>
        }
    })
}
