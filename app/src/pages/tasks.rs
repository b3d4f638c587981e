//! System tasks: one task with its steps, live; a workspace's page with its
//! tasks; and the operators' list of every task.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::A;
use leptos_router::hooks::{use_params_map, use_query_map};
use protocol::ids::{TaskId, WorkspaceId};
use protocol::views::{StepState, TaskState, TaskView, display_duration, display_time};

use crate::api::tasks::*;
use crate::components::*;
use crate::error::AppError;

fn task_tone(state: TaskState) -> Tone {
    match state {
        TaskState::Queued => Tone::Neutral,
        TaskState::Running => Tone::Warn,
        TaskState::Succeeded => Tone::Good,
        TaskState::Failed | TaskState::Cancelled => Tone::Bad,
    }
}

fn step_tone(state: StepState) -> Tone {
    match state {
        StepState::Pending => Tone::Neutral,
        StepState::Running => Tone::Warn,
        StepState::Succeeded => Tone::Good,
        StepState::Failed | StepState::Cancelled => Tone::Bad,
    }
}

#[component]
pub fn TaskPage() -> impl IntoView {
    let params = use_params_map();
    let id = Signal::derive(move || {
        params
            .read()
            .get("task")
            .and_then(|s| s.parse::<TaskId>().ok())
    });
    view! {
        <SignedIn>
            <LiveTask id />
        </SignedIn>
    }
}

/// A task with its steps, following them live. `embedded`: inside another
/// page (no page title); `on_change` hears every update.
#[component]
pub fn LiveTask(
    id: Signal<Option<TaskId>>,
    #[prop(optional)] embedded: bool,
    #[prop(optional)] on_change: Option<Callback<TaskView>>,
) -> impl IntoView {
    let first = Resource::new(
        move || id.get(),
        |id| async move { get_task(id.ok_or(AppError::NotFound)?).await },
    );
    let live = RwSignal::new(None::<TaskView>);
    let cancel = ServerAction::<CancelTask>::new();
    // Live updates: effects run in the browser only.
    Effect::new(move |_| {
        if let Some(id) = id.get() {
            let watch = send_wrapper_watch(id, live);
            on_cleanup(move || drop(watch));
        }
    });
    Effect::new(move |_| {
        if let Some(Ok(view)) = cancel.value().get() {
            advance(live, view);
        }
    });
    let cancel_error = Signal::derive(move || cancel.value().get().and_then(Result::err));
    if let Some(on_change) = on_change {
        Effect::new(move |_| {
            if let Some(view) = live.get() {
                on_change.run(view);
            }
        });
    }

    view! {
        <Transition fallback=|| view! { <Loading /> }>
            {move || {
                let shown = live.get().map(Ok).or_else(|| first.get());
                shown.map(|r| match r {
                    Err(e) => view! { <ErrorText error=e /> }.into_any(),
                    Ok(task) => {
                        let task_id = task.id;
                        view! {
                            {(!embedded).then(|| view! { <Title text=task.title.clone() /> })}
                            {task.workspace_id.filter(|_| !embedded).map(|w| view! {
                                <p class="text-sm text-slate-500"><A href=format!("/workspaces/{w}") attr:class=LINK>"Workspace"</A>" / task"</p>
                            })}
                            {embedded.then(|| view! {
                                <p class="mb-2 text-sm"><A href=format!("/tasks/{task_id}") attr:class=LINK>"Open the task"</A></p>
                            })}
                            <PageHeader title=task.title.clone()>
                                <span data-testid="task-state"><Badge text=task.state.label() tone=task_tone(task.state) /></span>
                                {(!task.state.is_finished()).then(|| view! {
                                    <ConfirmButton label="Cancel task" question="Cancel this task? It stops at its next safe point." confirm_label="Cancel task"
                                        on_confirm=move || { cancel.dispatch(CancelTask { task: task_id }); } pending=cancel.pending() />
                                })}
                            </PageHeader>
                            <FormError error=cancel_error />
                            <dl class="mb-6 grid gap-4 text-sm sm:grid-cols-4">
                                <div><dt class="text-slate-500">"Kind"</dt><dd><code>{task.kind.clone()}</code></dd></div>
                                <div><dt class="text-slate-500">"Queued"</dt><dd>{display_time(task.created_at)}</dd></div>
                                <div><dt class="text-slate-500">"Started"</dt><dd>{task.started_at.map(display_time).unwrap_or_else(|| "not yet".into())}</dd></div>
                                <div><dt class="text-slate-500">"Took"</dt><dd>{match (task.started_at, task.finished_at) {
                                    (Some(s), Some(f)) => display_duration(s, f),
                                    (Some(_), None) => "running".into(),
                                    _ => "–".into(),
                                }}</dd></div>
                            </dl>
                            {task.cancel_requested.then(|| (!task.state.is_finished()).then(|| view! {
                                <p class="mb-4 rounded-md border border-amber-200 bg-amber-50 p-3 text-sm text-amber-900">"Cancelling: the task stops at its next safe point."</p>
                            }))}
                            {task.error.clone().map(|e| view! {
                                <p role="alert" class="mb-4 rounded-md border border-rose-200 bg-rose-50 p-3 text-sm text-rose-800">{e}</p>
                            })}
                            <Card title="Steps">
                                <ol class="divide-y divide-slate-100" data-testid="steps">
                                    {task.steps.into_iter().map(|s| view! {
                                        <li class="flex flex-wrap items-start justify-between gap-2 py-3 text-sm" data-testid="step">
                                            <div>
                                                <p class="font-medium">{format!("{}. {}", s.position + 1, s.name)}</p>
                                                {s.message.clone().map(|m| view! { <p class="text-slate-600">{m}</p> })}
                                                {s.progress.clone().filter(|_| s.state == StepState::Running).map(|p| view! { <p class="text-slate-500" data-testid="step-progress">{p}</p> })}
                                            </div>
                                            <div class="flex items-center gap-3 text-slate-500">
                                                {(s.attempts > 1).then(|| format!("attempt {} of {}", s.attempts, s.max_attempts))}
                                                {match (s.started_at, s.finished_at) {
                                                    (Some(a), Some(b)) => Some(display_duration(a, b)),
                                                    _ => None,
                                                }}
                                                <Badge text=s.state.label() tone=step_tone(s.state) />
                                            </div>
                                        </li>
                                    }).collect_view()}
                                </ol>
                            </Card>
                        }.into_any()
                    }
                })
            }}
        </Transition>
    }
}

/// Shows `view` unless what is shown is further along: the stream and a
/// server function's answer can arrive in either order.
fn advance(live: RwSignal<Option<TaskView>>, view: TaskView) {
    fn progress(t: &TaskView) -> (bool, usize, bool) {
        let touched = t
            .steps
            .iter()
            .filter(|s| s.state != StepState::Pending)
            .count();
        (t.state.is_finished(), touched, t.cancel_requested)
    }
    live.update(|shown| {
        if shown
            .as_ref()
            .is_none_or(|s| progress(&view) >= progress(s))
        {
            *shown = Some(view);
        }
    });
}

/// Opens the live stream for `id`, feeding `live`. The handle is not `Send`
/// (it wraps browser objects); the wrapper lets the cleanup own it.
fn send_wrapper_watch(id: TaskId, live: RwSignal<Option<TaskView>>) -> impl Send + Sync {
    let watch = crate::browser::watch_task(id, move |view| advance(live, view));
    #[cfg(feature = "hydrate")]
    {
        send_wrapper::SendWrapper::new(watch)
    }
    #[cfg(not(feature = "hydrate"))]
    {
        let _ = watch;
    }
}

/// Rows of tasks linking to their pages.
#[component]
fn TaskTable(
    tasks: Vec<TaskView>,
    #[prop(optional)] retry: Option<ServerAction<AdminRetryTask>>,
) -> impl IntoView {
    view! {
        <div class="overflow-x-auto">
            <table class=TABLE>
                <thead><tr>
                    <th class=TH>"Task"</th><th class=TH>"State"</th><th class=TH>"Progress"</th><th class=TH>"Queued"</th><th class=TH>"Took"</th>
                    {retry.map(|_| view! { <th class=TH><span class="sr-only">"Actions"</span></th> })}
                </tr></thead>
                <tbody class="divide-y divide-slate-100">
                    {tasks.into_iter().map(|t| {
                        let done = t.steps.iter().filter(|s| s.state == StepState::Succeeded).count();
                        let id = t.id;
                        let retryable = matches!(t.state, TaskState::Failed | TaskState::Cancelled);
                        let retry_label = format!("Retry {}", t.title);
                        view! {
                            <tr>
                                <td class=TD><A href=format!("/tasks/{}", t.id) attr:class=LINK>{t.title.clone()}</A><p class="text-xs text-slate-500"><code>{t.kind.clone()}</code></p></td>
                                <td class=TD><Badge text=t.state.label() tone=task_tone(t.state) /></td>
                                <td class=TD>{format!("{done}/{} steps", t.steps.len())}</td>
                                <td class=TD>{display_time(t.created_at)}</td>
                                <td class=TD>{match (t.started_at, t.finished_at) { (Some(s), Some(f)) => display_duration(s, f), _ => "–".into() }}</td>
                                {retry.map(|retry| view! {
                                    <td class=TD>{retryable.then(|| view! {
                                        <Button class=BUTTON_SECONDARY aria_label=retry_label.clone() on_click=move || { retry.dispatch(AdminRetryTask { task: id }); }>"Retry"</Button>
                                    })}</td>
                                })}
                            </tr>
                        }
                    }).collect_view()}
                </tbody>
            </table>
        </div>
    }
}

/// A workspace's tasks, newest first, paged.
#[component]
pub fn WorkspaceTasks(
    id: Signal<Option<WorkspaceId>>,
    /// Changes when the list should be read again.
    #[prop(optional, into)]
    refresh: Signal<usize>,
) -> impl IntoView {
    let page = page_from_query();
    let tasks = Resource::new(
        move || (id.get(), page.get(), refresh.get()),
        |(id, page, _)| async move { workspace_tasks(id.ok_or(AppError::NotFound)?, page).await },
    );
    view! {
        <Card title="Task history" id="tasks">
            <Transition fallback=|| view! { <Loading /> }>
                {move || tasks.get().map(|r| match r {
                    Err(e) => view! { <ErrorText error=e /> }.into_any(),
                    Ok(p) if p.items.is_empty() => view! { <Empty text="No tasks for this workspace yet." /> }.into_any(),
                    Ok(p) => {
                        let pages = p.pages();
                        let base = id.get().map(|w| format!("/workspaces/{w}")).unwrap_or_default();
                        view! {
                            <TaskTable tasks=p.items />
                            <Pager page=p.page pages total=p.total base />
                        }.into_any()
                    }
                })}
            </Transition>
        </Card>
    }
}

#[component]
pub fn AdminTasks() -> impl IntoView {
    let query = use_query_map();
    let state = RwSignal::new(query.read_untracked().get("state").unwrap_or_default());
    let kind = RwSignal::new(String::new());
    let age = RwSignal::new(String::new());
    let page = page_from_query();
    let retry = ServerAction::<AdminRetryTask>::new();
    let run = ServerAction::<AdminRunExercise>::new();
    let tasks = Resource::new(
        move || {
            (
                state.get(),
                kind.get(),
                age.get(),
                page.get(),
                retry.version().get(),
            )
        },
        |(s, k, a, p, _)| admin_tasks(s, k, a, p),
    );
    let retry_error = Signal::derive(move || retry.value().get().and_then(Result::err));
    let run_error = error_of(run.value());
    view! {
        <div class="space-y-6">
            <Card title="Tasks" id="tasks">
                <div class="mb-4 flex flex-wrap gap-3">
                    <div>
                        <label for="filter-state" class="block text-xs font-medium text-slate-600">"State"</label>
                        <select id="filter-state" class=format!("mt-1 {INPUT}") prop:value=move || state.get() on:change=move |ev| state.set(event_target_value(&ev))>
                            <option value="">"any"</option>
                            {["queued", "running", "succeeded", "failed", "cancelled"].into_iter().map(|s| view! { <option value=s>{s}</option> }).collect_view()}
                        </select>
                    </div>
                    <div>
                        <label for="filter-kind" class="block text-xs font-medium text-slate-600">"Kind starts with"</label>
                        <input id="filter-kind" placeholder="workspace." class=format!("mt-1 {INPUT}") on:change=move |ev| kind.set(event_target_value(&ev)) />
                    </div>
                    <div>
                        <label for="filter-age" class="block text-xs font-medium text-slate-600">"Queued within"</label>
                        <select id="filter-age" class=format!("mt-1 {INPUT}") on:change=move |ev| age.set(event_target_value(&ev))>
                            <option value="">"any time"</option>
                            <option value="1h">"the last hour"</option>
                            <option value="24h">"the last day"</option>
                            <option value="7d">"the last week"</option>
                        </select>
                    </div>
                </div>
                <FormError error=retry_error />
                <Transition fallback=|| view! { <Loading /> }>
                    {move || tasks.get().map(|r| match r {
                        Err(e) => view! { <ErrorText error=e /> }.into_any(),
                        Ok(p) if p.items.is_empty() => view! { <Empty text="No tasks match." /> }.into_any(),
                        Ok(p) => {
                            let pages = p.pages();
                            view! {
                                <TaskTable tasks=p.items retry />
                                <Pager page=p.page pages total=p.total base="/admin/tasks" />
                            }.into_any()
                        }
                    })}
                </Transition>
            </Card>
            <Card title="Exercise the task engine">
                <p class="mb-4 text-sm text-slate-600">"Runs a diagnostic task whose steps wait and, if asked, fail their first attempts — to see the engine, retries and live progress work."</p>
                <ActionForm action=run attr:class="grid gap-3 sm:grid-cols-4 sm:items-end">
                    <Field label="Steps" name="steps" kind="number" value="3" required=true error=run_error />
                    <Field label="Wait per step (ms)" name="sleep_ms" kind="number" value="2000" required=true error=run_error />
                    <Field label="Fail first attempts" name="fail_attempts" kind="number" value="0" required=true error=run_error />
                    <div><Submit label="Run exercise" pending=run.pending() /></div>
                </ActionForm>
                <div class="mt-2"><FormError error=run_error fields=&["steps", "sleep_ms", "fail_attempts"] /></div>
            </Card>
        </div>
    }
}
