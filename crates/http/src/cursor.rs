//! Cursors of raw reading pages: opaque to clients, and valid only for the query that made them.
//!
//! A cursor carries where its page stopped (the last reading's instant and device: the next page
//! holds only readings strictly after it, in the answer's order), the range the first page
//! resolved (so a page asked later covers the same range: "the last 24 hours" does not move),
//! and what the query was: the route and its device or group, and its parameters, normalised.
//! It is base64url (no padding) of that payload and an HMAC-SHA256 over the tenant and the
//! payload, keyed by a key derived from the service's JWT secret: a cursor cannot be made or
//! changed by a client, nor used by another tenant.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use domain::{ReadingPosition, ReadingQuery, TenantId, Timestamp};
use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::error::ApiError;

/// Bytes of the MAC a cursor carries (of SHA-256's 32).
const MAC_BYTES: usize = 16;
/// The payload's layout version.
const VERSION: u8 = 1;
/// The longest cursor accepted, in characters (a cursor the service makes is about 120).
pub const MAX_CURSOR_CHARS: usize = 256;

/// The key cursors are signed with, derived from the JWT secret (a key of its own, so a cursor
/// MAC is never a token signature).
#[derive(Clone)]
pub struct CursorKey([u8; 32]);

impl CursorKey {
    #[must_use]
    pub fn derive(secret: &[u8]) -> Self {
        let mut hash = Sha256::new();
        hash.update(b"iot-api reading cursors v1\0");
        hash.update(secret);
        Self(hash.finalize().into())
    }

    fn mac(&self, tenant: &TenantId, payload: &[u8]) -> [u8; MAC_BYTES] {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.0)
            .expect("HMAC takes keys of any length");
        mac.update(tenant.as_str().as_bytes());
        mac.update(&[0]);
        mac.update(payload);
        let full = mac.finalize().into_bytes();
        let mut short = [0; MAC_BYTES];
        short.copy_from_slice(&full[..MAC_BYTES]);
        short
    }
}

/// The route and the device or group a page is of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Device(Uuid),
    Group(Uuid),
    /// A group with its descendants (`include_descendants=true`).
    GroupTree(Uuid),
}

/// A query's parameters, normalised: how it was spelt does not matter, what it asks does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Selection {
    /// Seconds looked back from each request, or `None` between fixed instants.
    look_back: Option<i64>,
    /// The fixed range (only when `look_back` is `None`).
    since: Option<Timestamp>,
    until: Option<Timestamp>,
    limit: u32,
}

impl Selection {
    #[must_use]
    pub fn of(query: &ReadingQuery) -> Self {
        match query.look_back() {
            Some(look_back) => Self {
                look_back: Some(look_back.whole_seconds()),
                since: None,
                until: None,
                limit: query.limit(),
            },
            None => Self {
                look_back: None,
                since: Some(query.since()),
                until: query.until(),
                limit: query.limit(),
            },
        }
    }

    /// The same selection, ignoring the range (when a request leaves the range to the cursor).
    fn with_range_of(self, other: Self) -> Self {
        Self {
            look_back: other.look_back,
            since: other.since,
            until: other.until,
            ..self
        }
    }

    #[must_use]
    pub fn limit(&self) -> u32 {
        self.limit
    }
}

/// What a cursor says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    pub scope: Scope,
    pub selection: Selection,
    /// The range the first page resolved.
    pub since: Timestamp,
    pub until: Option<Timestamp>,
    /// The last reading of the page it follows.
    pub after: ReadingPosition,
}

/// Which of a request's parameters it gave itself, next to its cursor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Given {
    pub range: bool,
    pub limit: bool,
    /// `include_descendants` (a group's own members or its tree).
    pub tree: bool,
}

impl Cursor {
    /// The cursor of the page after `after`, in the range `query` resolved.
    #[must_use]
    pub fn after(
        scope: Scope,
        query: &ReadingQuery,
        first: Selection,
        after: ReadingPosition,
    ) -> Self {
        Self {
            scope,
            selection: first,
            since: query.since(),
            until: query.until(),
            after,
        }
    }

    #[must_use]
    pub fn encode(&self, key: &CursorKey, tenant: &TenantId) -> String {
        let mut payload = Vec::with_capacity(96);
        payload.push(VERSION);
        let (kind, id) = match self.scope {
            Scope::Device(id) => (b'd', id),
            Scope::Group(id) => (b'g', id),
            Scope::GroupTree(id) => (b't', id),
        };
        payload.push(kind);
        payload.extend_from_slice(id.as_bytes());
        let s = &self.selection;
        match s.look_back {
            Some(seconds) => {
                payload.push(b'l');
                payload.extend_from_slice(&seconds.to_be_bytes());
            }
            None => {
                payload.push(b'b');
                put_instant(&mut payload, s.since);
                put_instant(&mut payload, s.until);
            }
        }
        payload.extend_from_slice(&s.limit.to_be_bytes());
        put_instant(&mut payload, Some(self.since));
        put_instant(&mut payload, self.until);
        put_instant(&mut payload, Some(self.after.timestamp));
        payload.extend_from_slice(self.after.device_id.as_bytes());
        let mac = key.mac(tenant, &payload);
        payload.extend_from_slice(&mac);
        URL_SAFE_NO_PAD.encode(payload)
    }

    /// Reads `raw`, a cursor of `tenant`.
    ///
    /// # Errors
    /// 422 naming `cursor` when it is not one the service made for this tenant.
    pub fn decode(raw: &str, key: &CursorKey, tenant: &TenantId) -> Result<Self, ApiError> {
        let refused =
            || ApiError::invalid("cursor", "is not a cursor this API gave for this query");
        if raw.is_empty() || raw.len() > MAX_CURSOR_CHARS {
            return Err(refused());
        }
        let bytes = URL_SAFE_NO_PAD.decode(raw).map_err(|_| refused())?;
        let split = bytes.len().checked_sub(MAC_BYTES).ok_or_else(refused)?;
        let (payload, mac) = bytes.split_at(split);
        // Compared in constant time, so timing tells nothing of the expected MAC.
        let expected = key.mac(tenant, payload);
        let differs = expected
            .iter()
            .zip(mac)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b));
        if differs != 0 {
            return Err(refused());
        }
        read_payload(payload).ok_or_else(refused)
    }

    /// The scope and query of the page after this cursor, for a request to `scope` that parsed
    /// as `asked` and gave the parameters `given` itself (what it left out, the cursor's apply:
    /// a tree's cursor sent without `include_descendants` goes on over the tree).
    ///
    /// # Errors
    /// 422 naming `cursor` when the cursor is of another route, device, group or query.
    pub fn resume(
        &self,
        scope: Scope,
        asked: &ReadingQuery,
        given: Given,
    ) -> Result<(Scope, ReadingQuery), ApiError> {
        let other = |what: &str| {
            ApiError::invalid(
                "cursor",
                format!("belongs to another query ({what}); send it with the parameters of the page that gave it"),
            )
        };
        let scope = match (self.scope, scope) {
            (Scope::GroupTree(tree), Scope::Group(group)) if tree == group && !given.tree => {
                self.scope
            }
            _ => scope,
        };
        if self.scope != scope {
            return Err(other(match (self.scope, scope) {
                (Scope::Device(_), Scope::Device(_)) => "another device",
                (Scope::Group(_), Scope::Group(_)) | (Scope::GroupTree(_), Scope::GroupTree(_)) => {
                    "another group"
                }
                (Scope::Group(_), Scope::GroupTree(_)) | (Scope::GroupTree(_), Scope::Group(_)) => {
                    "another include_descendants"
                }
                _ => "another route",
            }));
        }
        let mut wanted = Selection::of(asked);
        if !given.range {
            wanted = wanted.with_range_of(self.selection);
        }
        if !given.limit {
            wanted.limit = self.selection.limit;
        }
        if wanted != self.selection {
            return Err(other("other parameters"));
        }
        let base = ReadingQuery::between(
            Some(self.since),
            self.until,
            self.since,
            i64::from(self.selection.limit),
        )
        .map_err(|_| other("other parameters"))?;
        Ok((scope, base.resumed(self.since, self.until, self.after)))
    }
}

fn put_instant(out: &mut Vec<u8>, t: Option<Timestamp>) {
    match t {
        None => out.push(0),
        Some(t) => {
            out.push(1);
            let micros = t.get().unix_timestamp_nanos() / 1_000;
            out.extend_from_slice(&i64::try_from(micros).unwrap_or_default().to_be_bytes());
        }
    }
}

/// A reader of the payload's fields, in order.
struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> Option<[u8; N]> {
        let (head, rest) = self.0.split_first_chunk::<N>()?;
        self.0 = rest;
        Some(*head)
    }

    fn byte(&mut self) -> Option<u8> {
        self.take::<1>().map(|[b]| b)
    }

    fn uuid(&mut self) -> Option<Uuid> {
        self.take::<16>().map(Uuid::from_bytes)
    }

    fn instant(&mut self) -> Option<Option<Timestamp>> {
        match self.byte()? {
            0 => Some(None),
            1 => {
                let micros = i64::from_be_bytes(self.take::<8>()?);
                let t =
                    OffsetDateTime::from_unix_timestamp_nanos(i128::from(micros) * 1_000).ok()?;
                Timestamp::new(t).ok().map(Some)
            }
            _ => None,
        }
    }
}

fn read_payload(payload: &[u8]) -> Option<Cursor> {
    let mut r = Reader(payload);
    if r.byte()? != VERSION {
        return None;
    }
    let scope = match r.byte()? {
        b'd' => Scope::Device(r.uuid()?),
        b'g' => Scope::Group(r.uuid()?),
        b't' => Scope::GroupTree(r.uuid()?),
        _ => return None,
    };
    let (look_back, since, until) = match r.byte()? {
        b'l' => (Some(i64::from_be_bytes(r.take::<8>()?)), None, None),
        b'b' => (None, r.instant()?, r.instant()?),
        _ => return None,
    };
    let limit = u32::from_be_bytes(r.take::<4>()?);
    let first_since = r.instant()??;
    let first_until = r.instant()?;
    let after = ReadingPosition {
        timestamp: r.instant()??,
        device_id: r.uuid()?,
    };
    if !r.0.is_empty() {
        return None;
    }
    Some(Cursor {
        scope,
        selection: Selection {
            look_back,
            since,
            until,
            limit,
        },
        since: first_since,
        until: first_until,
        after,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tenant(name: &str) -> TenantId {
        TenantId::parse(name).expect("a tenant id")
    }

    fn query() -> ReadingQuery {
        ReadingQuery::last_hours(Timestamp::now(), 6, 10).expect("valid")
    }

    fn cursor(scope: Scope) -> Cursor {
        let q = query();
        Cursor::after(
            scope,
            &q,
            Selection::of(&q),
            ReadingPosition {
                timestamp: Timestamp::now(),
                device_id: Uuid::new_v4(),
            },
        )
    }

    #[test]
    fn a_cursor_reads_back_as_made_for_its_tenant_only() {
        let key = CursorKey::derive(b"secret");
        let made = cursor(Scope::Group(Uuid::new_v4()));
        let raw = made.encode(&key, &tenant("t1"));
        assert!(raw.len() <= MAX_CURSOR_CHARS, "{}", raw.len());
        assert_eq!(
            Cursor::decode(&raw, &key, &tenant("t1")).expect("valid"),
            made
        );
        for refused in [
            Cursor::decode(&raw, &key, &tenant("t2")),
            Cursor::decode(&raw, &CursorKey::derive(b"other"), &tenant("t1")),
            Cursor::decode("", &key, &tenant("t1")),
            Cursor::decode("not base64!", &key, &tenant("t1")),
        ] {
            let detail = refused.expect_err("refused").detail().to_owned();
            assert!(detail.starts_with("cursor: "), "{detail}");
        }
        // Any flipped bit is refused.
        let bytes = URL_SAFE_NO_PAD.decode(&raw).expect("base64");
        for i in 0..bytes.len() {
            let mut tampered = bytes.clone();
            tampered[i] ^= 1;
            let raw = URL_SAFE_NO_PAD.encode(tampered);
            assert!(
                Cursor::decode(&raw, &key, &tenant("t1")).is_err(),
                "byte {i}"
            );
        }
    }

    #[test]
    fn a_cursor_resumes_only_its_own_query() {
        let device = Uuid::new_v4();
        let made = cursor(Scope::Device(device));
        let same = Given {
            range: true,
            limit: true,
            tree: true,
        };
        let (scope, resumed) = made
            .resume(Scope::Device(device), &query(), same)
            .expect("same query");
        assert_eq!(scope, Scope::Device(device));
        assert_eq!(resumed.after(), Some(made.after));
        assert_eq!(resumed.since(), made.since);
        assert_eq!(resumed.limit(), 10);
        let bare = Given {
            range: false,
            limit: false,
            tree: false,
        };
        let defaults = ReadingQuery::last_hours(Timestamp::now(), 24, 1000).expect("valid");
        assert!(made.resume(Scope::Device(device), &defaults, bare).is_ok());
        for (scope, asked) in [
            (Scope::Device(Uuid::new_v4()), query()),
            (Scope::Group(device), query()),
            (
                Scope::Device(device),
                ReadingQuery::last_hours(Timestamp::now(), 7, 10).expect("valid"),
            ),
            (
                Scope::Device(device),
                ReadingQuery::last_hours(Timestamp::now(), 6, 11).expect("valid"),
            ),
        ] {
            let refused = made.resume(scope, &asked, same).expect_err("another query");
            assert!(
                refused.detail().starts_with("cursor: "),
                "{}",
                refused.detail()
            );
        }
    }

    #[test]
    fn a_trees_cursor_sent_without_include_descendants_goes_on_over_the_tree() {
        let group = Uuid::new_v4();
        let tree = cursor(Scope::GroupTree(group));
        let given = |tree: bool| Given {
            range: true,
            limit: true,
            tree,
        };
        let (scope, _) = tree
            .resume(Scope::Group(group), &query(), given(false))
            .expect("the cursor's tree applies");
        assert_eq!(scope, Scope::GroupTree(group));
        // Said otherwise, or of another group, or the group's cursor asked over the tree: refused.
        for (made, asked, given) in [
            (tree, Scope::Group(group), given(true)),
            (tree, Scope::Group(Uuid::new_v4()), given(false)),
            (
                cursor(Scope::Group(group)),
                Scope::GroupTree(group),
                given(true),
            ),
        ] {
            let refused = made.resume(asked, &query(), given).expect_err("refused");
            assert!(
                refused.detail().starts_with("cursor: "),
                "{}",
                refused.detail()
            );
        }
        let (scope, _) = cursor(Scope::Group(group))
            .resume(Scope::Group(group), &query(), given(false))
            .expect("the group's own");
        assert_eq!(scope, Scope::Group(group));
    }
}
