//! Bearer tokens, roles and tenants.
//!
//! Tokens are kept only as SHA-256 digests; a presented token is hashed and
//! compared with every configured digest in constant time (no early exit, no
//! length leak), so response timing says nothing about how close a guess was.

use std::path::Path;

use anyhow::{Context, Result, bail};
use sha2::{Digest, Sha256};
use subtle::{ConditionallySelectable, ConstantTimeEq};

/// The tenant a token without one belongs to.
pub(crate) const DEFAULT_TENANT: &str = "default";
/// Shortest accepted token.
const MIN_TOKEN_LEN: usize = 16;

/// What a token may do.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Role {
    /// Append messages and read them back (transcripts, lookup, consent, stats).
    Writer,
    /// Everything, including erasure, deletion, export, retention, holds,
    /// restriction, rectification, rewrite, compaction and the audit log.
    Admin,
}

impl Role {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Role::Writer => "writer",
            Role::Admin => "admin",
        }
    }
}

/// Who is calling: a role within one tenant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Principal {
    pub role: Role,
    pub tenant: String,
}

/// Whether a tenant name is acceptable: `[a-z0-9][a-z0-9_-]{0,63}`, so that it
/// is one plain directory name (no `..`, no `/`, no hidden files).
pub(crate) fn valid_tenant(name: &str) -> bool {
    let mut chars = name.chars();
    name.len() <= 64
        && chars
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
}

struct Entry {
    digest: [u8; 32],
    principal: Principal,
}

/// The configured tokens.
#[derive(Default)]
pub(crate) struct TokenTable {
    entries: Vec<Entry>,
}

impl std::fmt::Debug for TokenTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print digests.
        write!(f, "TokenTable({} tokens)", self.entries.len())
    }
}

fn digest(token: &[u8]) -> [u8; 32] {
    Sha256::digest(token).into()
}

impl TokenTable {
    pub(crate) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The tenants named by some token.
    pub(crate) fn tenants(&self) -> Vec<String> {
        let mut t: Vec<String> = self
            .entries
            .iter()
            .map(|e| e.principal.tenant.clone())
            .collect();
        t.sort();
        t.dedup();
        t
    }

    fn add(&mut self, token: &str, principal: Principal, origin: &str) -> Result<()> {
        if token.len() < MIN_TOKEN_LEN {
            bail!(
                "{origin}: a token must be at least {MIN_TOKEN_LEN} characters (e.g. the output of `openssl rand -hex 32`)"
            );
        }
        if !token.bytes().all(|b| b.is_ascii_graphic()) {
            bail!("{origin}: a token must be printable ASCII without spaces");
        }
        let d = digest(token.as_bytes());
        if self.entries.iter().any(|e| e.digest == d) {
            bail!("{origin}: the same token is listed twice");
        }
        self.entries.push(Entry {
            digest: d,
            principal,
        });
        Ok(())
    }

    /// `SHREDLOG_TOKEN`: an admin token of the default tenant.
    pub(crate) fn add_env_token(&mut self, token: &str) -> Result<()> {
        self.add(
            token.trim(),
            Principal {
                role: Role::Admin,
                tenant: DEFAULT_TENANT.into(),
            },
            "SHREDLOG_TOKEN",
        )
    }

    /// Reads a token file: `ROLE TOKEN [TENANT]` a line, `#` comments.
    /// Error messages name the line, never the token.
    pub(crate) fn load_file(&mut self, path: &Path) -> Result<()> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the token file {}", path.display()))?;
        warn_if_readable_by_others(path);
        for (i, raw) in text.lines().enumerate() {
            let origin = format!("token file {} line {}", path.display(), i + 1);
            let line = raw.split('#').next().unwrap_or_default().trim();
            if line.is_empty() {
                continue;
            }
            let fields: Vec<&str> = line.split_whitespace().collect();
            let (role, token, tenant) = match fields.as_slice() {
                [role, token] => (*role, *token, DEFAULT_TENANT),
                [role, token, tenant] => (*role, *token, *tenant),
                _ => bail!("{origin}: expected `ROLE TOKEN [TENANT]`"),
            };
            let role = match role {
                "writer" => Role::Writer,
                "admin" => Role::Admin,
                _ => bail!("{origin}: the role must be `writer` or `admin`"),
            };
            if !valid_tenant(tenant) {
                bail!(
                    "{origin}: a tenant name is 1 to 64 of a-z, 0-9, `_` and `-`, starting with a letter or digit"
                );
            }
            self.add(
                token,
                Principal {
                    role,
                    tenant: tenant.to_owned(),
                },
                &origin,
            )?;
        }
        if self.entries.is_empty() {
            bail!("the token file {} lists no token", path.display());
        }
        Ok(())
    }

    /// The principal a presented token belongs to. Every entry is compared,
    /// in constant time.
    pub(crate) fn authenticate(&self, token: &str) -> Option<Principal> {
        let d = digest(token.as_bytes());
        let mut found = subtle::Choice::from(0u8);
        let mut index = 0u32;
        for (i, e) in self.entries.iter().enumerate() {
            let eq = e.digest.ct_eq(&d);
            index = u32::conditional_select(&index, &(i as u32), eq);
            found |= eq;
        }
        if bool::from(found) {
            self.entries
                .get(index as usize)
                .map(|e| e.principal.clone())
        } else {
            None
        }
    }
}

#[cfg(unix)]
fn warn_if_readable_by_others(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(m) = std::fs::metadata(path)
        && m.permissions().mode() & 0o077 != 0
    {
        eprintln!(
            "shredlog: warning: the token file {} is readable by other users; `chmod 600` it",
            path.display()
        );
    }
}

#[cfg(not(unix))]
fn warn_if_readable_by_others(_path: &Path) {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenants_are_plain_names() {
        for ok in ["default", "acme", "a", "t-1", "x_y", "0abc"] {
            assert!(valid_tenant(ok), "{ok}");
        }
        for bad in [
            "", "..", ".", "../x", "a/b", "A", "-x", "_x", ".hidden", "a b", "é",
        ] {
            assert!(!valid_tenant(bad), "{bad}");
        }
        assert!(!valid_tenant(&"a".repeat(65)));
    }

    #[test]
    fn token_file_and_lookup() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens");
        std::fs::write(
            &path,
            "# comment\nadmin aaaaaaaaaaaaaaaaaaaa\nwriter bbbbbbbbbbbbbbbbbbbb acme # trailing\n\n",
        )
        .unwrap();
        let mut t = TokenTable::default();
        t.load_file(&path).unwrap();
        assert_eq!(
            t.authenticate("aaaaaaaaaaaaaaaaaaaa"),
            Some(Principal {
                role: Role::Admin,
                tenant: "default".into()
            })
        );
        assert_eq!(
            t.authenticate("bbbbbbbbbbbbbbbbbbbb"),
            Some(Principal {
                role: Role::Writer,
                tenant: "acme".into()
            })
        );
        assert_eq!(t.authenticate("aaaaaaaaaaaaaaaaaaab"), None);
        assert_eq!(t.authenticate(""), None);
        assert_eq!(t.tenants(), ["acme", "default"]);

        for (bad, want) in [
            ("root aaaaaaaaaaaaaaaaaaaa\n", "role"),
            ("admin short\n", "at least"),
            ("admin aaaaaaaaaaaaaaaaaaaa ../etc\n", "tenant"),
            ("admin\n", "expected"),
            (
                "admin aaaaaaaaaaaaaaaaaaaa\nwriter aaaaaaaaaaaaaaaaaaaa\n",
                "twice",
            ),
        ] {
            std::fs::write(&path, bad).unwrap();
            let err = TokenTable::default().load_file(&path).unwrap_err();
            let msg = format!("{err:#}");
            assert!(msg.contains(want), "{bad:?}: {msg}");
            assert!(
                !msg.contains("aaaaaaaaaaaaaaaaaaaa"),
                "echoes the token: {msg}"
            );
        }
    }
}
