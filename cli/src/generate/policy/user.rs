//! The user and groups a container runs as: `runAsUser`/`runAsGroup`
//! (container, then pod), else the image's `USER` resolved through its
//! `/etc/passwd` and `/etc/group`; the additional groups are the primary
//! group, the user's groups in `/etc/group`, `supplementalGroups` and
//! `fsGroup`.

use std::collections::BTreeSet;

use serde_json::Value;

use super::ImageConfig;

/// The process's identity as the runtime sends it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    /// `User.UID`.
    pub uid: u64,
    /// `User.GID`.
    pub gid: u64,
    /// `User.AdditionalGids` (including the primary group).
    pub additional_gids: BTreeSet<u64>,
}

/// The `runAsUser`/`runAsGroup` of the container's security context, else
/// the pod's.
fn sc_u64(container_sc: Option<&Value>, pod_sc: Option<&Value>, key: &str) -> Option<u64> {
    container_sc
        .and_then(|s| s.get(key))
        .and_then(Value::as_u64)
        .or_else(|| pod_sc.and_then(|s| s.get(key)).and_then(Value::as_u64))
}

struct PasswdEntry {
    name: String,
    uid: u64,
    gid: u64,
}

fn passwd(image: &ImageConfig) -> Vec<PasswdEntry> {
    let Some(text) = &image.passwd else {
        return Vec::new();
    };
    text.lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split(':').collect();
            Some(PasswdEntry {
                name: f.first()?.to_string(),
                uid: f.get(2)?.parse().ok()?,
                gid: f.get(3)?.parse().ok()?,
            })
        })
        .collect()
}

/// `(name, gid, members)` of each `/etc/group` line.
fn groups(image: &ImageConfig) -> Vec<(String, u64, Vec<String>)> {
    let Some(text) = &image.group else {
        return Vec::new();
    };
    text.lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split(':').collect();
            let members = f.get(3).map(|m| {
                m.split(',')
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .collect()
            });
            Some((
                f.first()?.to_string(),
                f.get(2)?.parse().ok()?,
                members.unwrap_or_default(),
            ))
        })
        .collect()
}

/// Resolves the identity; `Err(user)` names an image user or group that
/// cannot be resolved.
pub fn resolve(
    container_sc: Option<&Value>,
    pod_sc: Option<&Value>,
    image: &ImageConfig,
) -> Result<Identity, String> {
    let users = passwd(image);
    let groups = groups(image);
    let (image_user, image_group) = match image.user.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (image.user.as_str(), None),
    };
    let uid = match sc_u64(container_sc, pod_sc, "runAsUser") {
        Some(uid) => uid,
        None if image_user.is_empty() => 0,
        None => match image_user.parse() {
            Ok(uid) => uid,
            Err(_) => users
                .iter()
                .find(|u| u.name == image_user)
                .map(|u| u.uid)
                .ok_or_else(|| image.user.clone())?,
        },
    };
    let entry = users.iter().find(|u| u.uid == uid);
    let gid = match sc_u64(container_sc, pod_sc, "runAsGroup") {
        Some(gid) => gid,
        None => match image_group {
            Some(g) => match g.parse() {
                Ok(gid) => gid,
                Err(_) => groups
                    .iter()
                    .find(|(n, _, _)| n == g)
                    .map(|(_, gid, _)| *gid)
                    .ok_or_else(|| image.user.clone())?,
            },
            None => entry.map(|e| e.gid).unwrap_or(0),
        },
    };
    let mut additional_gids = BTreeSet::from([gid]);
    if let Some(e) = entry {
        for (_, g, members) in &groups {
            if members.contains(&e.name) {
                additional_gids.insert(*g);
            }
        }
    }
    if let Some(pod_sc) = pod_sc {
        for g in pod_sc
            .get("supplementalGroups")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(g) = g.as_u64() {
                additional_gids.insert(g);
            }
        }
        if let Some(g) = pod_sc.get("fsGroup").and_then(Value::as_u64) {
            additional_gids.insert(g);
        }
    }
    Ok(Identity {
        uid,
        gid,
        additional_gids,
    })
}
