//! `GET /views/{view}/whoami` (issue 14): whom the presented query key stands for, so the
//! console can tell a user that answers are filtered to what they may read, and as whom.
//! Not readiness-gated: the identity is the key's, not the view's content.

use axum::Json;
use fustor_core::view::Identity;
use serde::Serialize;

use super::error::ApiResult;
use super::view_ref::{ViewRef, run};

/// How much of the view the key sees.
#[derive(Debug, Serialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// A key without identity: the whole view, as the reference has it.
    View,
    /// A key bound to `uid`/`gids`: what that user could read through the mode bits.
    User,
    /// A key bound with `admin: true`: everything, and the answers say so.
    Admin,
}

/// A group of the key's identity with the name an agent reported for it, if any.
#[derive(Debug, Serialize)]
pub struct Group {
    pub gid: u32,
    pub name: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct WhoAmI {
    pub view: String,
    pub scope: Scope,
    /// `None` for a key without identity.
    pub uid: Option<u32>,
    /// The name an agent reported for `uid`; `None` when unknown.
    pub user: Option<String>,
    pub groups: Vec<Group>,
}

pub async fn whoami(v: ViewRef) -> ApiResult<Json<WhoAmI>> {
    let Some(who) = v.identity() else {
        return Ok(Json(WhoAmI {
            view: v.name,
            scope: Scope::View,
            uid: None,
            user: None,
            groups: Vec::new(),
        }));
    };
    let scope = if who.admin { Scope::Admin } else { Scope::User };
    let unnamed = |who: &Identity| {
        who.gids
            .iter()
            .map(|&gid| Group { gid, name: None })
            .collect::<Vec<_>>()
    };
    // Names come from the view (what the agents resolved); a view that is not loaded has none.
    let (user, groups) = match v.entry.clone() {
        Some(entry) => {
            let w = who.clone();
            run(&v.name, entry, move |d| {
                let groups = w
                    .gids
                    .iter()
                    .map(|&gid| Group {
                        gid,
                        name: d.group_name(gid),
                    })
                    .collect();
                Ok((d.user_name(w.uid), groups))
            })
            .await?
        }
        None => (None, unnamed(&who)),
    };
    Ok(Json(WhoAmI {
        view: v.name,
        scope,
        uid: Some(who.uid),
        user,
        groups,
    }))
}
