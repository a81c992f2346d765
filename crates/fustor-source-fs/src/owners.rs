//! Names of the uids and gids seen in rows (issue 14).
//!
//! Names are resolved here, on the NFS client, because that is where NIS/LDAP answer for the
//! share's ids; the central host may know none of them. Lookups go through the C library
//! (`getpwuid_r`/`getgrgid_r`, so nsswitch applies) once per id and then come from a cache
//! shared by every walker thread, refreshed after [`TTL`] so a renamed account shows up without
//! a restart. An id without a name (a deleted account) is cached as such and sent without one.

use std::collections::HashMap;
use std::sync::LazyLock;
use std::time::{Duration, Instant};

use nix::unistd::{Gid, Group, Uid, User};
use parking_lot::RwLock;

/// How long a resolved (or unresolved) name is trusted.
const TTL: Duration = Duration::from_secs(600);

type Cache = RwLock<HashMap<u32, (Option<String>, Instant)>>;

static USERS: LazyLock<Cache> = LazyLock::new(Default::default);
static GROUPS: LazyLock<Cache> = LazyLock::new(Default::default);

fn cached(cache: &Cache, id: u32, resolve: impl FnOnce(u32) -> Option<String>) -> Option<String> {
    if let Some((name, at)) = cache.read().get(&id)
        && at.elapsed() < TTL
    {
        return name.clone();
    }
    let name = resolve(id);
    cache.write().insert(id, (name.clone(), Instant::now()));
    name
}

/// The user name of `uid` on this host, if it has one.
pub fn user_name(uid: u32) -> Option<String> {
    cached(&USERS, uid, |id| match User::from_uid(Uid::from_raw(id)) {
        Ok(u) => u.map(|u| u.name),
        Err(e) => {
            tracing::debug!(uid = id, error = %e, "cannot resolve user name");
            None
        }
    })
}

/// The group name of `gid` on this host, if it has one.
pub fn group_name(gid: u32) -> Option<String> {
    cached(&GROUPS, gid, |id| {
        match Group::from_gid(Gid::from_raw(id)) {
            Ok(g) => g.map(|g| g.name),
            Err(e) => {
                tracing::debug!(gid = id, error = %e, "cannot resolve group name");
                None
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_resolves_and_unknown_ids_do_not() {
        assert_eq!(user_name(0).as_deref(), Some("root"));
        assert_eq!(group_name(0).as_deref(), Some("root"));
        // Cached answers are the same.
        assert_eq!(user_name(0).as_deref(), Some("root"));
        assert_eq!(user_name(3_999_999_999), None);
        assert_eq!(group_name(3_999_999_999), None);
    }
}
