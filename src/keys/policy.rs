//! Key lifecycle as pure policy (SPIRE's rotator is the model): every decision is a
//! function of (records, now, policy). The background task and the operator commands only
//! apply what these functions return, under the store's lock.
//!
//! A key is `pending` until `activates_at`, then `active` until a newer key activates or
//! its `retires_at` passes, then `retired`; it stays published until every token it can
//! have signed has expired and every cached JWKS has been refreshed, then it is removed.
//! States are derived from timestamps, so every replica switches keys at the same instant
//! without coordination: the new key was published `publish_lead` before it signs.

use crate::infra::clock::UnixTime;

use super::record::{KeyRecord, KeyState};

/// The JWKS never holds more keys than this.
pub const MAX_PUBLISHED: usize = 5;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// Seconds between scheduled rotations; 0 = only by hand.
    pub rotation_interval: i64,
    /// A new key is published this long before it signs (≥ JWKS max-age).
    pub publish_lead: i64,
    /// How late a replica may notice a change.
    pub reload_interval: i64,
    /// Longest life of a token, backdating included.
    pub max_token_ttl: i64,
    /// How long verifiers may cache the JWKS.
    pub jwks_max_age: i64,
}

impl Policy {
    pub fn from_settings(s: &crate::config::Settings) -> Self {
        Self {
            rotation_interval: s.keys.rotation_interval_seconds as i64,
            publish_lead: s.keys.publish_lead_seconds as i64,
            reload_interval: s.keys.reload_interval_seconds as i64,
            max_token_ttl: (s.token.max_ttl_seconds + s.token.clock_skew_seconds) as i64,
            jwks_max_age: s.jwks.max_age_seconds as i64,
        }
    }

    /// How long a key stays published after it stopped signing.
    fn retention(&self) -> i64 {
        self.reload_interval + self.max_token_ttl + self.jwks_max_age
    }
}

/// A record's state at one instant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyView {
    pub record: KeyRecord,
    pub state: KeyState,
    /// When it stopped (or will stop) signing, if known.
    pub retired_at: Option<UnixTime>,
    /// When it may leave the JWKS.
    pub removable_at: Option<UnixTime>,
}

/// What to change in the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Generate a key that signs from `activates_at` on.
    Generate { activates_at: UnixTime },
    /// Record that `kid` stops signing (or never will) at `at`.
    Retire { kid: String, at: UnixTime },
    /// Delete `kid` and its private key.
    Remove { kid: String },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RotateError {
    #[error("a rotation is already pending: key {kid} activates at {}", crate::infra::clock::rfc3339(*.activates_at))]
    AlreadyPending { kid: String, activates_at: UnixTime },
    #[error(
        "the JWKS already holds {MAX_PUBLISHED} keys; a rotation is possible from {} (when the oldest retired key expires), or now with --now, which drops the oldest retired key",
        crate::infra::clock::rfc3339(*.possible_at)
    )]
    TooManyKeys { possible_at: UnixTime },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RetireError {
    #[error("no key {0}")]
    NotFound(String),
    #[error(
        "key {0} is the active signing key; rotate first (`tessera keys rotate --now` in an emergency)"
    )]
    Active(String),
}

fn order(a: &KeyRecord, b: &KeyRecord) -> std::cmp::Ordering {
    (a.activates_at, a.created_at, &a.kid).cmp(&(b.activates_at, b.created_at, &b.kid))
}

/// Every record's state at `now`, oldest activation first.
pub fn view(records: &[KeyRecord], now: UnixTime, policy: &Policy) -> Vec<KeyView> {
    let mut sorted: Vec<&KeyRecord> = records.iter().collect();
    sorted.sort_by(|a, b| order(a, b));
    let stopped = |r: &KeyRecord| r.retires_at.is_some_and(|t| t <= now);
    let signing: Vec<&KeyRecord> = sorted
        .iter()
        .copied()
        .filter(|r| r.activates_at <= now && !stopped(r))
        .collect();
    sorted
        .into_iter()
        .map(|r| {
            let (state, retired_at) = if stopped(r) {
                (KeyState::Retired, r.retires_at)
            } else if r.activates_at > now {
                (KeyState::Pending, r.retires_at)
            } else {
                let position = signing.iter().position(|s| s.kid == r.kid).unwrap_or(0);
                match signing.get(position + 1) {
                    // Superseded by a newer key.
                    Some(next) => (KeyState::Retired, Some(next.activates_at)),
                    None => (KeyState::Active, r.retires_at),
                }
            };
            let removable_at = (state == KeyState::Retired)
                .then(|| retired_at.map(|t| t + policy.retention()))
                .flatten();
            KeyView {
                record: r.clone(),
                state,
                retired_at,
                removable_at,
            }
        })
        .collect()
}

/// The keys to publish at `now`: everything not yet removable.
pub fn published(views: &[KeyView], now: UnixTime) -> impl Iterator<Item = &KeyView> {
    views
        .iter()
        .filter(move |v| v.removable_at.is_none_or(|t| t > now))
}

/// What the background task must do at `now`: bootstrap a first key, record
/// supersessions, remove expired keys, and prepare the next scheduled key in time.
pub fn maintain(records: &[KeyRecord], now: UnixTime, policy: &Policy) -> Vec<Change> {
    let views = view(records, now, policy);
    let mut changes = Vec::new();
    for v in &views {
        if v.state == KeyState::Retired
            && v.record.retires_at.is_none()
            && let Some(at) = v.retired_at
        {
            changes.push(Change::Retire {
                kid: v.record.kid.clone(),
                at,
            });
        }
        if v.removable_at.is_some_and(|t| t <= now) {
            changes.push(Change::Remove {
                kid: v.record.kid.clone(),
            });
        }
    }
    let active = views.iter().find(|v| v.state == KeyState::Active);
    let pending = views
        .iter()
        .any(|v| v.state == KeyState::Pending && v.record.retires_at.is_none());
    match active {
        None if !pending => changes.push(Change::Generate { activates_at: now }),
        Some(a) if !pending && policy.rotation_interval > 0 => {
            let due = a.record.activates_at + policy.rotation_interval;
            let still_published = published(&views, now).count();
            if now >= due - policy.publish_lead && still_published < MAX_PUBLISHED {
                changes.push(Change::Generate {
                    activates_at: due.max(now + policy.publish_lead),
                });
            }
        }
        _ => {}
    }
    changes
}

/// An operator's rotation. Normal: a key that signs after the publish lead. `immediate`
/// (key compromise): the new key signs now, the active and any pending key retire now,
/// and the oldest retired keys are dropped to stay within the cap.
pub fn rotate(
    records: &[KeyRecord],
    now: UnixTime,
    policy: &Policy,
    immediate: bool,
) -> Result<Vec<Change>, RotateError> {
    let views = view(records, now, policy);
    let mut live: Vec<&KeyView> = published(&views, now).collect();
    if !immediate {
        if let Some(p) = live
            .iter()
            .find(|v| v.state == KeyState::Pending && v.record.retires_at.is_none())
        {
            return Err(RotateError::AlreadyPending {
                kid: p.record.kid.clone(),
                activates_at: p.record.activates_at,
            });
        }
        if live.len() >= MAX_PUBLISHED {
            let possible_at = live
                .iter()
                .filter_map(|v| v.removable_at)
                .min()
                .unwrap_or(now);
            return Err(RotateError::TooManyKeys { possible_at });
        }
        return Ok(vec![Change::Generate {
            activates_at: now + policy.publish_lead,
        }]);
    }
    let mut changes: Vec<Change> = live
        .iter()
        .filter(|v| v.state != KeyState::Retired)
        .map(|v| Change::Retire {
            kid: v.record.kid.clone(),
            at: now,
        })
        .collect();
    live.sort_by_key(|v| (v.state != KeyState::Retired, v.retired_at));
    let excess = (live.len() + 1).saturating_sub(MAX_PUBLISHED);
    changes.extend(live.iter().take(excess).map(|v| Change::Remove {
        kid: v.record.kid.clone(),
    }));
    changes.push(Change::Generate { activates_at: now });
    Ok(changes)
}

/// An operator retires `kid`: a pending key is cancelled, a retired one stays as it is;
/// the active key cannot be retired without a successor.
pub fn retire(
    records: &[KeyRecord],
    now: UnixTime,
    policy: &Policy,
    kid: &str,
) -> Result<Vec<Change>, RetireError> {
    let views = view(records, now, policy);
    let v = views
        .iter()
        .find(|v| v.record.kid == kid)
        .ok_or_else(|| RetireError::NotFound(kid.to_owned()))?;
    match v.state {
        KeyState::Active => Err(RetireError::Active(kid.to_owned())),
        KeyState::Retired => Ok(Vec::new()),
        KeyState::Pending => Ok(vec![Change::Retire {
            kid: kid.to_owned(),
            at: now,
        }]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400;
    const T0: i64 = 1_800_000_000;

    fn policy() -> Policy {
        Policy {
            rotation_interval: 30 * DAY,
            publish_lead: 1800,
            reload_interval: 5,
            max_token_ttl: 3605,
            jwks_max_age: 300,
        }
    }

    fn key(kid: &str, activates_at: i64) -> KeyRecord {
        KeyRecord {
            kid: kid.into(),
            created_at: activates_at - 1800,
            activates_at,
            retires_at: None,
        }
    }

    /// Applies changes as a store would, naming generated keys k1, k2, …
    fn apply(records: &mut Vec<KeyRecord>, changes: &[Change], now: i64) {
        for c in changes {
            match c {
                Change::Generate { activates_at } => {
                    let kid = format!("k{}", records.len() + 1);
                    records.push(KeyRecord {
                        kid,
                        created_at: now,
                        activates_at: *activates_at,
                        retires_at: None,
                    });
                }
                Change::Retire { kid, at } => {
                    if let Some(r) = records.iter_mut().find(|r| &r.kid == kid) {
                        r.retires_at = Some(*at);
                    }
                }
                Change::Remove { kid } => records.retain(|r| &r.kid != kid),
            }
        }
    }

    fn state_of(records: &[KeyRecord], now: i64, kid: &str) -> KeyState {
        view(records, now, &policy())
            .into_iter()
            .find(|v| v.record.kid == kid)
            .expect("kid")
            .state
    }

    #[test]
    fn an_empty_keyring_gets_an_active_key_at_once() {
        assert_eq!(
            maintain(&[], T0, &policy()),
            vec![Change::Generate { activates_at: T0 }]
        );
    }

    #[test]
    fn the_next_key_is_published_the_lead_before_it_signs() {
        let p = policy();
        let records = vec![key("a", T0)];
        let due = T0 + p.rotation_interval;
        assert!(
            maintain(&records, due - p.publish_lead - 1, &p).is_empty(),
            "not yet"
        );
        let changes = maintain(&records, due - p.publish_lead, &p);
        assert_eq!(
            changes,
            vec![Change::Generate { activates_at: due }],
            "activates on schedule"
        );

        let mut records = records;
        apply(&mut records, &changes, due - p.publish_lead);
        assert_eq!(state_of(&records, due - 1, "k2"), KeyState::Pending);
        assert_eq!(state_of(&records, due - 1, "a"), KeyState::Active);
        assert_eq!(state_of(&records, due, "k2"), KeyState::Active);
        assert_eq!(state_of(&records, due, "a"), KeyState::Retired);
        assert!(
            maintain(&records, due - 10, &p).is_empty(),
            "one pending key is enough"
        );
    }

    #[test]
    fn a_retired_key_stays_published_until_its_last_token_and_cached_jwks_expire() {
        let p = policy();
        let records = vec![key("a", T0), key("b", T0 + 100)];
        let views = view(&records, T0 + 100, &p);
        let a = views.iter().find(|v| v.record.kid == "a").expect("a");
        assert_eq!(a.state, KeyState::Retired);
        assert_eq!(a.retired_at, Some(T0 + 100));
        let gone_at = T0 + 100 + 5 + 3605 + 300;
        assert_eq!(a.removable_at, Some(gone_at));
        assert_eq!(
            published(&view(&records, gone_at - 1, &p), gone_at - 1).count(),
            2
        );
        assert_eq!(published(&view(&records, gone_at, &p), gone_at).count(), 1);

        let changes = maintain(&records, gone_at, &p);
        assert!(
            changes.contains(&Change::Retire {
                kid: "a".into(),
                at: T0 + 100
            }),
            "supersession recorded"
        );
        assert!(changes.contains(&Change::Remove { kid: "a".into() }));
    }

    #[test]
    fn a_clock_jump_prepares_one_key_that_still_gets_its_full_lead() {
        let p = policy();
        let records = vec![key("a", T0)];
        let late = T0 + 10 * p.rotation_interval;
        let changes = maintain(&records, late, &p);
        assert_eq!(
            changes,
            vec![Change::Generate {
                activates_at: late + p.publish_lead
            }]
        );
        let mut records = records;
        apply(&mut records, &changes, late);
        assert_eq!(
            state_of(&records, late, "a"),
            KeyState::Active,
            "the old key signs until the new one is published long enough"
        );
        assert!(maintain(&records, late + 1, &p).is_empty());
    }

    #[test]
    fn a_clock_running_backwards_never_un_retires_or_activates_early() {
        let p = policy();
        let records = vec![key("a", T0), key("b", T0 + 1000)];
        assert_eq!(state_of(&records, T0 + 999, "b"), KeyState::Pending);
        assert_eq!(state_of(&records, T0 + 999, "a"), KeyState::Active);
        assert!(maintain(&records, T0 + 999, &p).is_empty());
    }

    #[test]
    fn manual_rotation_is_refused_while_one_is_pending_or_the_jwks_is_full() {
        let p = policy();
        let records = vec![key("a", T0), key("b", T0 + 5000)];
        assert!(matches!(
            rotate(&records, T0 + 10, &p, false),
            Err(RotateError::AlreadyPending { .. })
        ));

        // Five published keys: four retired recently, one active.
        let full: Vec<KeyRecord> = (0..5)
            .map(|i| key(&format!("r{i}"), T0 + i * 100))
            .collect();
        let now = T0 + 500;
        let err = rotate(&full, now, &p, false).expect_err("full");
        let RotateError::TooManyKeys { possible_at } = err.clone() else {
            panic!("{err}")
        };
        assert_eq!(
            possible_at,
            T0 + 100 + p.retention(),
            "when the oldest retired key leaves"
        );
        assert!(err.to_string().contains("--now"), "{err}");
        assert!(
            maintain(&full, now, &p)
                .iter()
                .all(|c| !matches!(c, Change::Generate { .. }))
        );
    }

    #[test]
    fn emergency_rotation_signs_at_once_and_drops_the_oldest_retired_key_at_the_cap() {
        let p = policy();
        let mut records: Vec<KeyRecord> = (0..4)
            .map(|i| key(&format!("r{i}"), T0 + i * 100))
            .collect();
        records.push(key("pending", T0 + 9000));
        let now = T0 + 500;
        let changes = rotate(&records, now, &p, true).expect("always possible");
        assert!(
            changes.contains(&Change::Retire {
                kid: "r3".into(),
                at: now
            }),
            "the active key retires"
        );
        assert!(
            changes.contains(&Change::Retire {
                kid: "pending".into(),
                at: now
            }),
            "no older key may take over later"
        );
        assert!(
            changes.contains(&Change::Remove { kid: "r0".into() }),
            "the oldest retired key is dropped"
        );
        assert_eq!(
            changes.last(),
            Some(&Change::Generate { activates_at: now })
        );
        apply(&mut records, &changes, now);
        let views = view(&records, now, &p);
        assert_eq!(published(&views, now).count(), MAX_PUBLISHED);
        assert_eq!(
            views.iter().filter(|v| v.state == KeyState::Active).count(),
            1
        );
        assert_eq!(
            state_of(&records, now + 10_000, "pending"),
            KeyState::Retired
        );
    }

    #[test]
    fn retiring_cancels_pending_keys_but_never_the_active_one() {
        let p = policy();
        let records = vec![key("a", T0), key("b", T0 + 5000)];
        assert_eq!(
            retire(&records, T0 + 1, &p, "a"),
            Err(RetireError::Active("a".into()))
        );
        assert_eq!(
            retire(&records, T0 + 1, &p, "b"),
            Ok(vec![Change::Retire {
                kid: "b".into(),
                at: T0 + 1
            }])
        );
        assert_eq!(
            retire(&records, T0 + 1, &p, "zz"),
            Err(RetireError::NotFound("zz".into()))
        );
    }

    #[test]
    fn manual_only_rotation_never_rotates_by_itself() {
        let p = Policy {
            rotation_interval: 0,
            ..policy()
        };
        assert!(maintain(&[key("a", T0)], T0 + 365 * DAY, &p).is_empty());
    }
}
