//! Where a delivery may go (SSRF guard): `http`/`https` URLs whose host is not, and does not
//! resolve to, a loopback, private, link-local, metadata or otherwise non-public address
//! ([`domain::webhook::is_forbidden_address`]), unless private targets are allowed
//! (`IOT_WEBHOOK_ALLOW_PRIVATE`, for tests and closed networks).
//!
//! Checked when a subscription is created or its URL changed, and again at every delivery,
//! where [`GuardedResolver`] answers the client's DNS questions: the addresses checked are the
//! addresses connected to, so a name that changes its answer (DNS rebinding) gains nothing.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use domain::webhook::{is_forbidden_address, URL_MAX};
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::Url;

/// Why a target is refused; the text completes `url: …`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Not a URL this service sends to (syntax, scheme, length, credentials).
    Invalid(String),
    /// The host is, or resolves to, an address deliveries may not reach.
    Private(String),
    /// The host name does not resolve.
    Unresolved(String),
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Invalid(why) | Self::Private(why) | Self::Unresolved(why) => f.write_str(why),
        }
    }
}

impl std::error::Error for Refusal {}

/// How long a check waits for DNS: well within a request's deadline (5 s by default).
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(3);

/// The URL's syntax: absolute `http` or `https`, a host, no credentials, at most
/// [`URL_MAX`] bytes.
///
/// # Errors
/// [`Refusal::Invalid`].
pub fn parse(raw: &str) -> Result<Url, Refusal> {
    if raw.len() > URL_MAX {
        return Err(Refusal::Invalid(format!(
            "must be at most {URL_MAX} characters"
        )));
    }
    let url =
        Url::parse(raw).map_err(|e| Refusal::Invalid(format!("must be an absolute URL ({e})")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(Refusal::Invalid("must be an http or https URL".to_owned()));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(Refusal::Invalid("must name a host".to_owned()));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(Refusal::Invalid("must not carry credentials".to_owned()));
    }
    Ok(url)
}

fn private(ip: IpAddr) -> Refusal {
    Refusal::Private(format!(
        "must not point to a loopback, private, link-local or metadata address ({ip}); set IOT_WEBHOOK_ALLOW_PRIVATE=true to allow it"
    ))
}

/// The IP address a URL's host is written as, if it is one.
fn literal(url: &Url) -> Option<IpAddr> {
    match url.host()? {
        url::Host::Ipv4(v4) => Some(IpAddr::V4(v4)),
        url::Host::Ipv6(v6) => Some(IpAddr::V6(v6)),
        url::Host::Domain(_) => None,
    }
}

/// Refuses an address literal deliveries may not reach (names are [`GuardedResolver`]'s).
///
/// # Errors
/// [`Refusal::Private`].
pub fn check_literal(url: &Url, allow_private: bool) -> Result<(), Refusal> {
    match literal(url) {
        Some(ip) if !allow_private && is_forbidden_address(ip) => Err(private(ip)),
        _ => Ok(()),
    }
}

/// Checks a subscription's URL: its syntax, and (unless `allow_private`) its host and every
/// address its name resolves to now.
///
/// # Errors
/// [`Refusal`].
pub async fn check(raw: &str, allow_private: bool) -> Result<Url, Refusal> {
    let url = parse(raw)?;
    check_literal(&url, allow_private)?;
    if allow_private || literal(&url).is_some() {
        return Ok(url);
    }
    let host = url.host_str().unwrap_or_default().to_owned();
    resolve_checked(&host, false).await?;
    Ok(url)
}

/// The addresses `host` resolves to; refused when any is forbidden (unless `allow_private`).
async fn resolve_checked(host: &str, allow_private: bool) -> Result<Vec<SocketAddr>, Refusal> {
    let unresolved = || Refusal::Unresolved(format!("host {host} does not resolve"));
    let found = tokio::time::timeout(RESOLVE_TIMEOUT, tokio::net::lookup_host((host, 0)))
        .await
        .map_err(|_| unresolved())?
        .map_err(|_| unresolved())?;
    let addresses: Vec<SocketAddr> = found.collect();
    if addresses.is_empty() {
        return Err(unresolved());
    }
    if !allow_private {
        if let Some(bad) = addresses.iter().find(|a| is_forbidden_address(a.ip())) {
            return Err(Refusal::Private(format!(
                "host {host} resolves to {}, a loopback, private, link-local or metadata address; set IOT_WEBHOOK_ALLOW_PRIVATE=true to allow it",
                bad.ip()
            )));
        }
    }
    Ok(addresses)
}

/// The delivery client's DNS: the system resolver, then the guard on every address.
#[derive(Debug, Clone, Copy)]
pub struct GuardedResolver {
    pub allow_private: bool,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allow_private = self.allow_private;
        Box::pin(async move {
            let addresses = resolve_checked(name.as_str(), allow_private).await?;
            Ok(Box::new(addresses.into_iter()) as Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn loopback_private_metadata_and_local_names_are_refused() {
        for url in [
            "http://127.0.0.1:9000/hook",
            "http://10.0.0.1/hook",
            "http://169.254.169.254/latest/meta-data",
            "http://[::1]/hook",
            "http://localhost:8080/hook",
        ] {
            let refused = check(url, false).await.expect_err(url);
            assert!(matches!(refused, Refusal::Private(_)), "{url}: {refused}");
        }
        check("http://127.0.0.1:9000/hook", true)
            .await
            .expect("allowed when private targets are");
    }

    #[test]
    fn only_plain_http_and_https_urls_with_a_host_are_taken() {
        for url in [
            "ftp://example.com/",
            "file:///etc/passwd",
            "example.com/hook",
            "https://user:pw@example.com/",
            "gopher://example.com",
        ] {
            assert!(matches!(parse(url), Err(Refusal::Invalid(_))), "{url}");
        }
        assert!(parse(&format!("https://example.com/{}", "a".repeat(URL_MAX))).is_err());
        parse("https://example.com:8443/hooks?x=1").expect("valid");
    }
}
