//! Projects: every project the caller can see, and one project's workspaces.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::A;
use leptos_router::hooks::use_params_map;
use protocol::ids::ProjectId;
use protocol::views::{WorkspaceKind, display_time};

use crate::api::tenancy::*;
use crate::components::*;
use crate::error::AppError;

#[component]
pub fn ProjectsPage() -> impl IntoView {
    view! {
        <Title text="Projects" />
        <SignedIn>
            <Projects />
        </SignedIn>
    }
}

#[component]
fn Projects() -> impl IntoView {
    let page = page_from_query();
    let projects = Resource::new(move || page.get(), list_my_projects);
    {
        view! {
            <PageHeader title="Projects" intro="Every project you can see, across your organizations. Create projects on an organization's page." />
            <Card>
                <Transition fallback=|| view! { <Loading /> }>
                    {move || projects.get().map(|r| match r {
                        Err(e) => view! { <ErrorText error=e /> }.into_any(),
                        Ok(p) if p.items.is_empty() => view! { <Empty text="No projects to show." hint="Open an organization to create one." /> }.into_any(),
                        Ok(p) => { let pages = p.pages(); view! {
                            <table class=TABLE>
                                <thead><tr><th class=TH>"Project"</th><th class=TH>"Organization"</th><th class=TH>"Workspaces"</th><th class=TH>"Created"</th></tr></thead>
                                <tbody class="divide-y divide-slate-100">
                                    {p.items.into_iter().map(|pr| view! {
                                        <tr>
                                            <td class=TD><A href=format!("/projects/{}", pr.id) attr:class=LINK>{pr.name.clone()}</A></td>
                                            <td class=TD>{pr.organization_name.clone()}</td>
                                            <td class=TD>{pr.workspace_count}</td>
                                            <td class=TD>{display_time(pr.created_at)}</td>
                                        </tr>
                                    }).collect_view()}
                                </tbody>
                            </table>
                            <Pager page=p.page pages=pages total=p.total base="/projects" />
                        }.into_any() }
                    })}
                </Transition>
            </Card>
        }
    }
}

#[component]
pub fn ProjectPage() -> impl IntoView {
    view! {
        <SignedIn>
            <Project />
        </SignedIn>
    }
}

#[component]
fn Project() -> impl IntoView {
    let params = use_params_map();
    let id = Memo::new(move |_| {
        params
            .read()
            .get("project")
            .and_then(|s| s.parse::<ProjectId>().ok())
    });
    let rename = ServerAction::<RenameProject>::new();
    let delete = ServerAction::<DeleteProject>::new();
    let create = ServerAction::<crate::api::workspaces::CreateWorkspace>::new();
    let page = Resource::new(
        move || (id.get(), rename.version().get()),
        |(id, _)| async move { get_project(id.ok_or(AppError::NotFound)?).await },
    );
    let workspaces = Resource::new(
        move || (id.get(), create.version().get()),
        |(id, _)| async move { list_workspaces(id.ok_or(AppError::NotFound)?).await },
    );
    let rename_error = error_of(rename.value());
    let delete_error = error_of(delete.value());

    view! {
        <Suspense fallback=|| view! { <Loading /> }>
            {move || Suspend::new(async move {
                match page.await {
                    Err(e) => view! { <ErrorText error=e /> }.into_any(),
                    Ok(p) => {
                        let project = p.project.clone();
                        let project_id = project.id;
                        let current_name = project.name.clone();
                        let delete_question = format!("Delete project {}? This cannot be undone.", project.name);
                        view! {
                            <Title text=project.name.clone() />
                            <p class="text-sm text-slate-500"><A href=format!("/orgs/{}", project.organization_id) attr:class=LINK>{project.organization_name.clone()}</A>" / project"</p>
                            <PageHeader title=project.name.clone()>
                                <A href=format!("/projects/{project_id}/monitoring") attr:class=BUTTON_SECONDARY>"Monitoring"</A>
                            </PageHeader>
                            <div class="space-y-6">
                                <Card title="Workspaces" id="workspaces">
                                    <Transition fallback=|| view! { <Loading /> }>
                                        {move || workspaces.get().map(|r| match r {
                                            Err(e) => view! { <ErrorText error=e /> }.into_any(),
                                            Ok(list) if list.is_empty() => view! { <Empty text="No workspaces yet." /> }.into_any(),
                                            Ok(list) => view! {
                                                <table class=TABLE>
                                                    <thead><tr><th class=TH>"Name"</th><th class=TH>"Type"</th><th class=TH>"State"</th><th class=TH>"Created"</th></tr></thead>
                                                    <tbody class="divide-y divide-slate-100">
                                                        {list.into_iter().map(|w| view! {
                                                            <tr>
                                                                <td class=TD><A href=format!("/workspaces/{}", w.id) attr:class=LINK>{w.name}</A></td>
                                                                <td class=TD>{match w.kind { WorkspaceKind::Kubernetes => "Kubernetes", WorkspaceKind::Baremetal => "Bare metal" }}</td>
                                                                <td class=TD><Badge text=w.state.label() tone=crate::pages::workspaces::state_tone(w.state) /></td>
                                                                <td class=TD>{display_time(w.created_at)}</td>
                                                            </tr>
                                                        }).collect_view()}
                                                    </tbody>
                                                </table>
                                            }.into_any(),
                                        })}
                                    </Transition>
                                </Card>
                                <Card title="New workspace" id="new-workspace">
                                    {(!p.can_create_workspace).then(|| view! {
                                        <p class="mb-3 rounded-md border border-slate-200 bg-slate-50 p-3 text-sm text-slate-700">
                                            "Your role here does not include creating workspaces (workspace.create), or the organization is not verified yet. Ask an owner or admin."
                                        </p>
                                    })}
                                    <crate::pages::workspaces::NewWorkspaceForm project=project_id action=create />
                                </Card>
                                {(p.can_update || p.can_delete).then(|| view! {
                                    <Card title="Project settings">
                                        <div class="space-y-4">
                                            {p.can_update.then(|| view! {
                                                <ActionForm action=rename attr:class="flex flex-wrap items-end gap-3">
                                                    <input type="hidden" name="project" value=project_id.to_string() />
                                                    <div class="grow"><Field label="Rename project" name="name" value=current_name.clone() required=true error=rename_error /></div>
                                                    <Submit label="Rename" pending=rename.pending() class=BUTTON_SECONDARY />
                                                </ActionForm>
                                            })}
                                            {p.can_delete.then(|| view! {
                                                <div>
                                                    <FormError error=delete_error />
                                                    <ConfirmButton label="Delete project" question=delete_question.clone() confirm_label="Delete"
                                                        on_confirm=move || { delete.dispatch(DeleteProject { project: project_id }); } pending=delete.pending() />
                                                </div>
                                            })}
                                        </div>
                                    </Card>
                                })}
                            </div>
                        }.into_any()
                    }
                }
            })}
        </Suspense>
        <div class="mt-6"><crate::pages::load_balancers::LoadBalancersCard project=id /></div>
    }
}

#[component]
pub fn WorkspacesPage() -> impl IntoView {
    view! {
        <Title text="Workspaces" />
        <SignedIn>
            <Workspaces />
        </SignedIn>
    }
}

#[component]
fn Workspaces() -> impl IntoView {
    let page = page_from_query();
    let workspaces = Resource::new(move || page.get(), list_my_workspaces);
    {
        view! {
            <PageHeader title="Workspaces" intro="Kubernetes clusters and bare-metal spaces in your projects. Create one from a project's page." />
            <Card>
                <Transition fallback=|| view! { <Loading /> }>
                    {move || workspaces.get().map(|r| match r {
                        Err(e) => view! { <ErrorText error=e /> }.into_any(),
                        Ok(p) if p.items.is_empty() => view! { <Empty text="No workspaces to show." hint="Open a project to create one." /> }.into_any(),
                        Ok(p) => { let pages = p.pages(); view! {
                            <table class=TABLE>
                                <thead><tr><th class=TH>"Name"</th><th class=TH>"Type"</th><th class=TH>"State"</th><th class=TH>"Project"</th></tr></thead>
                                <tbody class="divide-y divide-slate-100">
                                    {p.items.into_iter().map(|w| view! {
                                        <tr>
                                            <td class=TD><A href=format!("/workspaces/{}", w.id) attr:class=LINK>{w.name.clone()}</A></td>
                                            <td class=TD>{match w.kind { WorkspaceKind::Kubernetes => "Kubernetes", WorkspaceKind::Baremetal => "Bare metal" }}</td>
                                            <td class=TD><Badge text=w.state.label() tone=crate::pages::workspaces::state_tone(w.state) /></td>
                                            <td class=TD><A href=format!("/projects/{}", w.project_id) attr:class=LINK>"Open project"</A></td>
                                        </tr>
                                    }).collect_view()}
                                </tbody>
                            </table>
                            <Pager page=p.page pages=pages total=p.total base="/workspaces" />
                        }.into_any() }
                    })}
                </Transition>
            </Card>
        }
    }
}
