//! The console's settings page (`/desk/settings`): supervisors read the settings in force and
//! their history; administrators change them. Checking, versioning and audit are the
//! services' ([`billpay_services::settings`]); this parses the form and renders.

use std::collections::BTreeMap;

use askama::Template;
use axum::Router;
use axum::extract::{Form, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use billpay_services::Billpay;
use billpay_services::settings::{self as st, SettingsRejected, SettingsView};
use billpay_services::staff::{Role, Staff, StaffSession};

use crate::desk::{Desk, S, html, see_other, service_error, signed_in};

pub fn routes() -> Router<Billpay> {
    Router::new().route("/desk/settings", get(page).post(save))
}

/// One setting on the page.
struct Row {
    key: &'static str,
    /// The form's field id: the key with dots made dashes.
    id: String,
    label: &'static str,
    help: &'static str,
    value: String,
    /// The file's value, when the value in force differs from it.
    file: Option<String>,
    error: Option<String>,
    /// A list: one item per line.
    multiline: bool,
    inputmode: &'static str,
}

struct Section {
    title: &'static str,
    id: String,
    rows: Vec<Row>,
}

struct Version {
    version: i64,
    at: String,
    who: String,
    reason: String,
    changes: Vec<(String, String, String)>,
}

#[derive(Template)]
#[template(path = "desk/settings.html")]
struct SettingsPage {
    desk: Desk,
    version: i64,
    can_edit: bool,
    editable: bool,
    problem: Option<String>,
    saved: Option<i64>,
    errors: Vec<(String, String)>,
    reason: String,
    reason_error: Option<String>,
    sections: Vec<Section>,
    history: Vec<Version>,
}

fn field_id(key: &str) -> String {
    key.replace('.', "-")
}

fn render(
    s: &StaffSession,
    staff: &Staff,
    view: SettingsView,
    typed: Option<&BTreeMap<String, String>>,
    rejected: Option<&SettingsRejected>,
    saved: Option<i64>,
    status: StatusCode,
) -> Response {
    let problem_of = |key: &str| {
        rejected.and_then(|r| {
            r.problems
                .iter()
                .find(|(k, _)| *k == Some(key))
                .map(|(_, p)| p.clone())
        })
    };
    let sections = st::SECTIONS
        .iter()
        .map(|title| Section {
            title,
            id: title.to_ascii_lowercase().replace(' ', "-"),
            rows: view
                .values
                .iter()
                .filter(|(f, _, _)| f.section == *title)
                .map(|(f, value, file)| Row {
                    key: f.key,
                    id: field_id(f.key),
                    label: f.label,
                    help: f.help,
                    value: typed
                        .and_then(|t| t.get(f.key).cloned())
                        .unwrap_or_else(|| value.clone()),
                    file: (value != file).then(|| file.clone()),
                    error: problem_of(f.key),
                    multiline: f.kind == st::Kind::List,
                    inputmode: match f.kind {
                        st::Kind::Money => "decimal",
                        st::Kind::Int { .. } | st::Kind::OptionalInt { .. } => "numeric",
                        _ => "text",
                    },
                })
                .collect(),
        })
        .collect();
    let errors = rejected
        .map(|r| {
            r.problems
                .iter()
                .map(|(k, p)| {
                    (
                        k.map(field_id).unwrap_or_else(|| "reason".into()),
                        p.clone(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    let history = view
        .history
        .into_iter()
        .map(|v| Version {
            version: v.version,
            at: billpay_services::clock::from_micros(v.at)
                .strftime("%Y-%m-%d %H:%M UTC")
                .to_string(),
            who: v.staff_name,
            reason: v.reason,
            changes: v.changes,
        })
        .collect();
    html(
        status,
        &SettingsPage {
            desk: Desk::of(s),
            version: view.version,
            can_edit: view.editable && staff.role >= Role::Admin,
            editable: view.editable,
            problem: view.problem,
            saved,
            errors,
            reason: typed
                .and_then(|t| t.get("reason").cloned())
                .unwrap_or_default(),
            reason_error: problem_of("reason"),
            sections,
            history,
        },
    )
}

async fn page(
    State(app): State<Billpay>,
    axum::Extension(s): S,
    axum::extract::Query(q): axum::extract::Query<BTreeMap<String, String>>,
) -> Response {
    let Some(staff) = signed_in(&s) else {
        return see_other("/desk/signin");
    };
    match app.settings_view(&staff).await {
        Ok(view) => {
            let saved = q.get("saved").and_then(|v| v.parse().ok());
            render(&s, &staff, view, None, None, saved, StatusCode::OK)
        }
        Err(e) => service_error(&s, e),
    }
}

async fn save(
    State(app): State<Billpay>,
    axum::Extension(s): S,
    Form(typed): Form<BTreeMap<String, String>>,
) -> Response {
    let Some(staff) = signed_in(&s) else {
        return see_other("/desk/signin");
    };
    let reason = typed.get("reason").cloned().unwrap_or_default();
    let result = app.save_settings(&staff, &typed, &reason).await;
    match result {
        Ok(Ok(version)) => see_other(&format!("/desk/settings?saved={version}#top")),
        Ok(Err(rejected)) => match app.settings_view(&staff).await {
            Ok(view) => render(
                &s,
                &staff,
                view,
                Some(&typed),
                Some(&rejected),
                None,
                StatusCode::UNPROCESSABLE_ENTITY,
            ),
            Err(e) => service_error(&s, e),
        },
        Err(e) => service_error(&s, e),
    }
}
