//! Dashboard sessions: who signed in (a principal of the token table), the
//! session's form token against cross-site request forgery, and the opaque
//! handles by which pages address visitors, so that no email ever reaches a
//! URL.
//!
//! Session ids and handles are 128 random bits. The server keeps sessions in
//! memory, keyed by the SHA-256 of their id (a memory dump does not hand out
//! cookies); a restart signs everyone out. A session ends after
//! [`IDLE`] without a request, or [`LIFETIME`] after sign-in; a handle after
//! [`HANDLE_IDLE`] without use. Handles belong to their session: another
//! session (another tenant, another person) cannot use them.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::server::auth::Principal;

/// A session ends after this long without a request.
pub(crate) const IDLE: Duration = Duration::from_secs(30 * 60);
/// A session ends this long after sign-in, used or not.
pub(crate) const LIFETIME: Duration = Duration::from_secs(12 * 60 * 60);
/// A visitor handle ends after this long without use.
pub(crate) const HANDLE_IDLE: Duration = Duration::from_secs(15 * 60);
/// Sessions kept at most; the least recently used goes first.
const MAX_SESSIONS: usize = 10_000;
/// Handles (and receipts) kept per session at most.
const MAX_HANDLES: usize = 200;

/// 128 random bits as 32 hex digits.
pub(crate) fn random_id() -> Option<String> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).ok()?;
    Some(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

fn digest(id: &str) -> [u8; 32] {
    Sha256::digest(id.as_bytes()).into()
}

/// Equal in constant time.
pub(crate) fn same_secret(a: &str, b: &str) -> bool {
    bool::from(digest(a).ct_eq(&digest(b)))
}

struct Handle {
    email: String,
    last_used: Instant,
}

struct Session {
    principal: Principal,
    csrf: String,
    created: Instant,
    last_seen: Instant,
    handles: HashMap<String, Handle>,
    /// The transcripts an operation acted on, by audit sequence number (for
    /// its receipt page: ids only, no personal data).
    receipts: HashMap<u64, Vec<String>>,
}

/// What a request learns of its session.
#[derive(Clone, Debug)]
pub(crate) struct SessionCtx {
    key: [u8; 32],
    pub principal: Principal,
    pub csrf: String,
    /// When the cookie expires, seconds from now.
    pub max_age: u64,
}

/// Every session of the server.
#[derive(Default)]
pub(crate) struct Sessions {
    inner: Mutex<HashMap<[u8; 32], Session>>,
}

impl Sessions {
    /// Starts a session; its id (the cookie's value) and context.
    pub(crate) fn create(
        &self,
        principal: Principal,
        now: Instant,
    ) -> Option<(String, SessionCtx)> {
        let id = random_id()?;
        let csrf = random_id()?;
        let key = digest(&id);
        let mut all = self.inner.lock();
        all.retain(|_, s| alive(s, now));
        if all.len() >= MAX_SESSIONS
            && let Some(oldest) = all.iter().min_by_key(|(_, s)| s.last_seen).map(|(k, _)| *k)
        {
            all.remove(&oldest);
        }
        all.insert(
            key,
            Session {
                principal: principal.clone(),
                csrf: csrf.clone(),
                created: now,
                last_seen: now,
                handles: HashMap::new(),
                receipts: HashMap::new(),
            },
        );
        let ctx = SessionCtx {
            key,
            principal,
            csrf,
            max_age: LIFETIME.as_secs(),
        };
        Some((id, ctx))
    }

    /// The live session of a cookie's id, marked as used now.
    pub(crate) fn find(&self, id: &str, now: Instant) -> Option<SessionCtx> {
        let key = digest(id);
        let mut all = self.inner.lock();
        let s = all.get_mut(&key)?;
        if !alive(s, now) {
            all.remove(&key);
            return None;
        }
        s.last_seen = now;
        let left = LIFETIME.saturating_sub(now.saturating_duration_since(s.created));
        Some(SessionCtx {
            key,
            principal: s.principal.clone(),
            csrf: s.csrf.clone(),
            max_age: left.as_secs(),
        })
    }

    /// Ends a session.
    pub(crate) fn end(&self, ctx: &SessionCtx) {
        self.inner.lock().remove(&ctx.key);
    }

    fn with<T>(&self, ctx: &SessionCtx, f: impl FnOnce(&mut Session) -> T) -> Option<T> {
        self.inner.lock().get_mut(&ctx.key).map(f)
    }

    /// A new handle for a visitor's email (canonical form), in this session.
    pub(crate) fn handle_for(&self, ctx: &SessionCtx, email: &str, now: Instant) -> Option<String> {
        let handle = random_id()?;
        self.with(ctx, |s| {
            s.handles
                .retain(|_, h| now.saturating_duration_since(h.last_used) < HANDLE_IDLE);
            if s.handles.len() >= MAX_HANDLES
                && let Some(oldest) = s
                    .handles
                    .iter()
                    .min_by_key(|(_, h)| h.last_used)
                    .map(|(k, _)| k.clone())
            {
                s.handles.remove(&oldest);
            }
            s.handles.insert(
                handle.clone(),
                Handle {
                    email: email.to_owned(),
                    last_used: now,
                },
            );
            handle
        })
    }

    /// The email a handle of this session stands for, if it is still alive.
    pub(crate) fn email_of(&self, ctx: &SessionCtx, handle: &str, now: Instant) -> Option<String> {
        self.with(ctx, |s| {
            let h = s.handles.get_mut(handle)?;
            if now.saturating_duration_since(h.last_used) >= HANDLE_IDLE {
                s.handles.remove(handle);
                return None;
            }
            h.last_used = now;
            Some(h.email.clone())
        })
        .flatten()
    }

    /// After a rectification of the email: the handle stands for the new one.
    pub(crate) fn rename(&self, ctx: &SessionCtx, handle: &str, email: &str) {
        self.with(ctx, |s| {
            if let Some(h) = s.handles.get_mut(handle) {
                h.email = email.to_owned();
            }
        });
    }

    /// Notes which transcripts the operation logged as `seq` acted on.
    pub(crate) fn note_receipt(&self, ctx: &SessionCtx, seq: u64, transcripts: Vec<String>) {
        self.with(ctx, |s| {
            if s.receipts.len() >= MAX_HANDLES
                && let Some(oldest) = s.receipts.keys().min().copied()
            {
                s.receipts.remove(&oldest);
            }
            s.receipts.insert(seq, transcripts);
        });
    }

    /// The transcripts noted for a receipt.
    pub(crate) fn receipt(&self, ctx: &SessionCtx, seq: u64) -> Vec<String> {
        self.with(ctx, |s| s.receipts.get(&seq).cloned())
            .flatten()
            .unwrap_or_default()
    }
}

fn alive(s: &Session, now: Instant) -> bool {
    now.saturating_duration_since(s.last_seen) < IDLE
        && now.saturating_duration_since(s.created) < LIFETIME
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::auth::Role;

    fn admin(tenant: &str) -> Principal {
        Principal {
            role: Role::Admin,
            tenant: tenant.into(),
        }
    }

    #[test]
    fn sessions_expire_when_idle_and_at_their_end_of_life() {
        let s = Sessions::default();
        let t0 = Instant::now();
        let (id, ctx) = s.create(admin("acme"), t0).unwrap();
        assert_eq!(id.len(), 32);
        assert_ne!(id, ctx.csrf);
        // Used within the idle time, again and again: alive until its lifetime.
        let mut t = t0;
        while t < t0 + LIFETIME - IDLE {
            t += IDLE - Duration::from_secs(1);
            assert!(s.find(&id, t).is_some(), "{:?}", t - t0);
        }
        assert!(s.find(&id, t0 + LIFETIME).is_none());
        // Idle too long: gone, and gone for good.
        let (id, _) = s.create(admin("acme"), t0).unwrap();
        assert!(s.find(&id, t0 + IDLE).is_none());
        assert!(s.find(&id, t0).is_none());
        // Unknown ids, and a session that was ended.
        assert!(s.find("0123456789abcdef0123456789abcdef", t0).is_none());
        let (id, ctx) = s.create(admin("acme"), t0).unwrap();
        s.end(&ctx);
        assert!(s.find(&id, t0).is_none());
    }

    #[test]
    fn handles_are_short_lived_and_belong_to_their_session() {
        let s = Sessions::default();
        let t0 = Instant::now();
        let (_, a) = s.create(admin("acme"), t0).unwrap();
        let (_, b) = s.create(admin("globex"), t0).unwrap();
        let h = s.handle_for(&a, "ann@example.com", t0).unwrap();
        assert!(!h.contains("ann"));
        assert_eq!(s.email_of(&a, &h, t0).as_deref(), Some("ann@example.com"));
        // Not another session's.
        assert_eq!(s.email_of(&b, &h, t0), None);
        // Renewed by use, gone after HANDLE_IDLE unused.
        let t1 = t0 + HANDLE_IDLE - Duration::from_secs(1);
        assert!(s.email_of(&a, &h, t1).is_some());
        assert!(
            s.email_of(&a, &h, t1 + HANDLE_IDLE - Duration::from_secs(1))
                .is_some()
        );
        let t2 = t1 + 2 * HANDLE_IDLE;
        assert_eq!(s.email_of(&a, &h, t2), None);
        // Renamed after a rectification.
        let h = s.handle_for(&a, "ann@example.com", t0).unwrap();
        s.rename(&a, &h, "ann.lee@example.com");
        assert_eq!(
            s.email_of(&a, &h, t0).as_deref(),
            Some("ann.lee@example.com")
        );
        // Receipts are the session's own.
        s.note_receipt(&a, 7, vec!["t-1".into()]);
        assert_eq!(s.receipt(&a, 7), ["t-1"]);
        assert!(s.receipt(&b, 7).is_empty());
    }

    #[test]
    fn secrets_compare_whole() {
        assert!(same_secret("abc", "abc"));
        assert!(!same_secret("abc", "abd"));
        assert!(!same_secret("abc", "abcd"));
        assert!(!same_secret("", "a"));
    }
}
