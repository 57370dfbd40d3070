//! Strong entity tags for chats and the `If-Match` / `If-None-Match` preconditions.
//!
//! A chat's ETag is its version (`"v3"`), which every change increments; the
//! representation with k-means results adds a digest of those results. The
//! version is what the database compares in the same statement that writes, so
//! a stale `If-Match` can never slip through between a read and a write.

use actix_web::HttpRequest;
use actix_web::http::header::{HeaderName, IF_MATCH, IF_NONE_MATCH};
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
enum Tag<'a> {
    Any,
    Strong(&'a str),
    Weak(&'a str),
}

/// Splits a header value into entity-tags; junk between commas is skipped.
fn tags(value: &str) -> Vec<Tag<'_>> {
    let mut tags = Vec::new();
    let mut rest = value;
    loop {
        rest = rest.trim_start_matches([' ', '\t', ',']);
        if rest.is_empty() {
            return tags;
        }
        let (weak, body) = match rest.strip_prefix("W/") {
            Some(body) => (true, body),
            None => (false, rest),
        };
        if !weak && body.starts_with('*') {
            tags.push(Tag::Any);
            rest = &body[1..];
        } else if let Some(quoted) = body.strip_prefix('"') {
            let end = quoted.find('"').unwrap_or(quoted.len());
            let opaque = &quoted[..end];
            tags.push(if weak {
                Tag::Weak(opaque)
            } else {
                Tag::Strong(opaque)
            });
            rest = quoted.get(end + 1..).unwrap_or("");
        } else {
            rest = body.find(',').map_or("", |comma| &body[comma..]);
        }
    }
}

fn header_tags<'r>(request: &'r HttpRequest, name: &HeaderName) -> Option<Vec<Tag<'r>>> {
    let mut values = request.headers().get_all(name).peekable();
    values.peek()?;
    Some(
        values
            .filter_map(|value| value.to_str().ok())
            .flat_map(tags)
            .collect(),
    )
}

/// The writer's precondition from `If-Match` (strong comparison: a weak tag never
/// matches). No header, or `*`, is "any version".
pub fn expected_version(request: &HttpRequest) -> ExpectedVersion {
    let Some(tags) = header_tags(request, &IF_MATCH) else {
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
    let Some(tags) = header_tags(request, &IF_NONE_MATCH) else {
        return false;
    };
    let opaque = etag.trim_matches('"');
    tags.iter().any(|tag| match tag {
        Tag::Any => true,
        Tag::Strong(candidate) | Tag::Weak(candidate) => *candidate == opaque,
    })
}

#[cfg(test)]
mod tests {
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
}
