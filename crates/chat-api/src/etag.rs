//! Strong entity tags for chats and the `If-Match` / `If-None-Match` preconditions.
//!
//! A chat's ETag is its version (`"v3"`), which every change increments; the
//! representation with k-means results adds a digest of those results. The
//! version is what the database compares in the same statement that writes, so
//! a stale `If-Match` can never slip through between a read and a write.

use actix_web::HttpRequest;
use actix_web::http::header::{EntityTag, Header, IfMatch, IfNoneMatch};
use chat_domain::{Chat, ExpectedVersion, KmeansData, Version};

/// The ETag of a chat's plain representation.
pub fn chat_etag(chat: &Chat) -> String {
    format!("\"v{}\"", chat.version.get())
}

/// The ETag of a chat with its k-means results: a digest of everything the
/// representation shows of them, so it changes when the chat changes and when
/// results are added, removed, or edited in place by another writer.
pub fn chat_with_kmeans_etag(chat: &Chat, results: &[KmeansData]) -> String {
    let mut digest = Fnv1a::default();
    for data in results {
        digest.write(data.id.as_uuid().as_bytes());
        digest.write(&data.created_at.unix_micros().to_be_bytes());
        digest.write(&(data.k() as u64).to_be_bytes());
        for row in data.centroids.rows() {
            digest.write(&(row.len() as u64).to_be_bytes());
            for value in row {
                digest.write(&value.to_bits().to_be_bytes());
            }
        }
    }
    format!(
        "\"v{}-k{}-{:016x}\"",
        chat.version.get(),
        results.len(),
        digest.0
    )
}

/// FNV-1a, 64 bits: stable across builds and replicas, unlike std's hasher.
struct Fnv1a(u64);

impl Default for Fnv1a {
    fn default() -> Self {
        Self(0xcbf2_9ce4_8422_2325)
    }
}

impl Fnv1a {
    fn write(&mut self, bytes: &[u8]) {
        for byte in bytes {
            self.0 = (self.0 ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3);
        }
    }
}

/// One entity-tag from a precondition header.
#[derive(Debug, PartialEq, Eq)]
enum Tag {
    Any,
    Strong(String),
    Weak(String),
}

impl From<EntityTag> for Tag {
    fn from(tag: EntityTag) -> Self {
        if tag.weak {
            Self::Weak(tag.tag().to_owned())
        } else {
            Self::Strong(tag.tag().to_owned())
        }
    }
}

/// The entity-tags of a precondition header, `None` when it is absent, as
/// actix-web's typed headers read them: `*` standing alone is "any"; members
/// that are not entity-tags (junk, an unterminated quote, a `*` inside a list)
/// are dropped, so they match nothing. A value that is not text names no tag.
fn header_tags<H: Header>(request: &HttpRequest, typed: fn(H) -> Vec<Tag>) -> Option<Vec<Tag>> {
    if !request.headers().contains_key(H::name()) {
        return None;
    }
    Some(H::parse(request).map_or_else(|_| Vec::new(), typed))
}

fn if_match_tags(header: IfMatch) -> Vec<Tag> {
    match header {
        IfMatch::Any => vec![Tag::Any],
        IfMatch::Items(tags) => tags.into_iter().map(Tag::from).collect(),
    }
}

fn if_none_match_tags(header: IfNoneMatch) -> Vec<Tag> {
    match header {
        IfNoneMatch::Any => vec![Tag::Any],
        IfNoneMatch::Items(tags) => tags.into_iter().map(Tag::from).collect(),
    }
}

/// The writer's precondition from `If-Match` (strong comparison: a weak tag never
/// matches). No header, or `*`, is "any version".
pub fn expected_version(request: &HttpRequest) -> ExpectedVersion {
    let Some(tags) = header_tags(request, if_match_tags) else {
        return ExpectedVersion::Any;
    };
    if tags.contains(&Tag::Any) {
        return ExpectedVersion::Any;
    }
    let versions = tags
        .iter()
        .filter_map(|tag| match tag {
            Tag::Strong(opaque) => opaque
                .strip_prefix('v')?
                .parse()
                .ok()
                .and_then(Version::new),
            _ => None,
        })
        .collect();
    ExpectedVersion::OneOf(versions)
}

/// Whether `If-None-Match` matches `etag` (weak comparison), meaning the client
/// already has this representation: answer 304.
pub fn none_match(request: &HttpRequest, etag: &str) -> bool {
    let Some(tags) = header_tags(request, if_none_match_tags) else {
        return false;
    };
    let opaque = etag.trim_matches('"');
    tags.iter().any(|tag| match tag {
        Tag::Any => true,
        Tag::Strong(candidate) | Tag::Weak(candidate) => candidate == opaque,
    })
}

#[cfg(test)]
mod tests {
    use actix_web::http::header::{IF_MATCH, IF_NONE_MATCH};
    use actix_web::test::TestRequest;

    use super::*;

    fn expected(value: &str) -> ExpectedVersion {
        expected_version(
            &TestRequest::default()
                .insert_header((IF_MATCH, value))
                .to_http_request(),
        )
    }

    #[test]
    fn if_match_reads_strong_version_tags_only() {
        let v = |n| Version::new(n).expect("positive");
        assert_eq!(expected("\"v3\""), ExpectedVersion::OneOf(vec![v(3)]));
        assert_eq!(
            expected("\"v3\", \"v4\""),
            ExpectedVersion::OneOf(vec![v(3), v(4)])
        );
        assert_eq!(expected("W/\"v3\""), ExpectedVersion::OneOf(vec![]));
        assert_eq!(expected("v3"), ExpectedVersion::OneOf(vec![]));
        assert_eq!(
            expected("\"v0\", garbage, \"x\""),
            ExpectedVersion::OneOf(vec![])
        );
        assert_eq!(expected("*"), ExpectedVersion::Any);
        assert_eq!(
            expected_version(&TestRequest::default().to_http_request()),
            ExpectedVersion::Any
        );
    }

    #[test]
    fn if_none_match_compares_weakly() {
        let request = |value: &str| {
            TestRequest::default()
                .insert_header((IF_NONE_MATCH, value))
                .to_http_request()
        };
        assert!(none_match(&request("\"v2\""), "\"v2\""));
        assert!(none_match(&request("W/\"v2\""), "\"v2\""));
        assert!(none_match(&request("\"v1\", \"v2\""), "\"v2\""));
        assert!(none_match(&request("*"), "\"v2\""));
        assert!(!none_match(&request("\"v1\""), "\"v2\""));
        assert!(!none_match(
            &TestRequest::default().to_http_request(),
            "\"v2\""
        ));
    }

    /// Malformed members match nothing (they are dropped); what is left of
    /// the list still counts.
    #[test]
    fn malformed_members_are_dropped_and_the_rest_still_counts() {
        let v = |n| Version::new(n).expect("positive");
        assert_eq!(
            expected("\"v3\", garbage"),
            ExpectedVersion::OneOf(vec![v(3)]),
            "junk next to a tag"
        );
        assert_eq!(
            expected("\"v1\", *"),
            ExpectedVersion::OneOf(vec![v(1)]),
            "`*` only means any when it stands alone"
        );
        assert_eq!(
            expected("\"v4"),
            ExpectedVersion::OneOf(vec![]),
            "an unterminated quote"
        );
        assert_eq!(expected(""), ExpectedVersion::OneOf(vec![]), "empty");
        let request = TestRequest::default()
            .insert_header((IF_NONE_MATCH, "junk, W/\"v2\""))
            .to_http_request();
        assert!(none_match(&request, "\"v2\""));
    }
}
