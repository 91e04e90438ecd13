//! Path-prefix routing: the longest matching prefix wins, matching whole path segments so that
//! `/v1/users` matches `/v1/users` and `/v1/users/42` but not `/v1/usersettings`.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;

use http::Method;
use http::uri::{Authority, PathAndQuery, Scheme};

use crate::auth::Identity;
use crate::config::{GatewayConfig, RouteConfig, normalize_prefix, parse_upstream};
use crate::upstream::Pool;

/// A route, precomputed from its configuration so that the hot path only compares bytes.
#[derive(Debug)]
pub struct Route {
    pub name: Arc<str>,
    /// Normalized: no trailing slash except for the root prefix `/`.
    pub prefix: String,
    pub scheme: Scheme,
    pub authority: Authority,
    /// `Host` header value sent upstream (the upstream's authority).
    pub host_header: http::HeaderValue,
    /// The upstream URL's own path (without trailing slash), prepended to forwarded paths.
    pub base_path: String,
    /// Access for methods no rule lists (the route's `public`).
    pub default_access: Access,
    /// Per-method access, from the route's `rules`; a handful at most, so scanned linearly.
    pub rules: Box<[(Method, Access)]>,
    pub strip_prefix: bool,
    pub retries: u32,
    pub timeout: Duration,
    /// Keep-alive connections for plain-http upstreams; https ones go through hyper-util.
    pub pool: Option<Arc<Pool>>,
}

/// Who may call a route with a given method.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Access {
    /// No token needed.
    Public,
    /// A valid token (when `auth.jwt` is set) carrying one of `roles` or one of `scopes`; any
    /// valid token when both are empty.
    Token {
        roles: Box<[Box<str>]>,
        scopes: Box<[Box<str>]>,
    },
}

impl Access {
    pub fn is_public(&self) -> bool {
        matches!(self, Self::Public)
    }

    /// Whether a verified identity satisfies the requirement.
    pub fn allows(&self, identity: &Identity) -> bool {
        match self {
            Self::Public => true,
            Self::Token { roles, scopes } => identity.has_any(roles, scopes),
        }
    }
}

/// Routes sorted by descending prefix length, so the first match is the longest one.
#[derive(Debug, Default)]
pub struct RouteTable {
    routes: Vec<Arc<Route>>,
}

#[derive(Debug, thiserror::Error)]
#[error("failed to build route `{route}`: {reason}")]
pub struct RouteError {
    route: String,
    reason: String,
}

impl RouteTable {
    pub fn from_config(config: &GatewayConfig) -> Result<Self, RouteError> {
        Self::from_config_reusing(config, None)
    }

    /// Like [`Self::from_config`], keeping the idle upstream connections of `previous` for
    /// upstreams that are still routed to (a reload does not reconnect everything).
    pub fn from_config_reusing(
        config: &GatewayConfig,
        previous: Option<&RouteTable>,
    ) -> Result<Self, RouteError> {
        let default_timeout = Duration::from_millis(config.upstream_timeout_ms);
        let mut pools: Vec<Arc<Pool>> = previous
            .into_iter()
            .flat_map(|table| table.routes.iter())
            .filter_map(|route| route.pool.clone())
            .collect();
        let mut routes = config
            .routes
            .iter()
            .map(|route| Route::from_config(route, default_timeout, &mut pools).map(Arc::new))
            .collect::<Result<Vec<_>, _>>()?;
        routes.sort_by_key(|route| std::cmp::Reverse(route.prefix.len()));
        Ok(Self { routes })
    }

    /// The route whose prefix is the longest segment-wise prefix of `path`.
    pub fn find(&self, path: &str) -> Option<&Arc<Route>> {
        self.routes.iter().find(|route| route.matches(path))
    }

    pub fn routes(&self) -> impl Iterator<Item = &Arc<Route>> {
        self.routes.iter()
    }
}

impl Route {
    fn from_config(
        config: &RouteConfig,
        default_timeout: Duration,
        pools: &mut Vec<Arc<Pool>>,
    ) -> Result<Self, RouteError> {
        let (scheme, authority, base_path) =
            parse_upstream(&config.upstream).map_err(|reason| RouteError {
                route: config.name.clone(),
                reason,
            })?;
        let host_header =
            http::HeaderValue::from_str(authority.as_str()).map_err(|_| RouteError {
                route: config.name.clone(),
                reason: format!("`{}` is not a valid Host header value", authority.as_str()),
            })?;
        let pool = (scheme == Scheme::HTTP).then(|| {
            let target = connect_target(&authority);
            if let Some(pool) = pools.iter().find(|pool| pool.target() == target) {
                return Arc::clone(pool);
            }
            let pool = Arc::new(Pool::new(target));
            pools.push(Arc::clone(&pool));
            pool
        });
        Ok(Self {
            pool,
            name: Arc::from(config.name.as_str()),
            host_header,
            prefix: normalize_prefix(&config.path_prefix).to_owned(),
            scheme,
            authority,
            base_path,
            default_access: if config.public {
                Access::Public
            } else {
                Access::Token {
                    roles: Box::default(),
                    scopes: Box::default(),
                }
            },
            rules: config
                .rules
                .iter()
                .flat_map(|rule| {
                    let access = if rule.public {
                        Access::Public
                    } else {
                        Access::Token {
                            roles: rule.roles.iter().map(|r| Box::from(r.as_str())).collect(),
                            scopes: rule.scopes.iter().map(|s| Box::from(s.as_str())).collect(),
                        }
                    };
                    rule.methods.iter().filter_map(move |method| {
                        Method::from_bytes(method.as_bytes())
                            .ok()
                            .map(|method| (method, access.clone()))
                    })
                })
                .collect(),
            strip_prefix: config.strip_prefix,
            retries: config.retries,
            timeout: config
                .timeout_ms
                .map(Duration::from_millis)
                .unwrap_or(default_timeout),
        })
    }

    /// Who may call this route with `method`.
    pub fn access(&self, method: &Method) -> &Access {
        self.rules
            .iter()
            .find(|(listed, _)| listed == method)
            .map_or(&self.default_access, |(_, access)| access)
    }

    fn matches(&self, path: &str) -> bool {
        if self.prefix == "/" {
            return true;
        }
        match path.strip_prefix(self.prefix.as_str()) {
            Some(rest) => rest.is_empty() || rest.starts_with('/'),
            None => false,
        }
    }

    /// The path and query to send upstream for a request path and query.
    pub fn upstream_path_and_query(
        &self,
        path: &str,
        query: Option<&str>,
    ) -> Result<PathAndQuery, http::uri::InvalidUri> {
        match self.upstream_target(path, query) {
            Cow::Borrowed(target) => PathAndQuery::try_from(target),
            Cow::Owned(target) => PathAndQuery::try_from(target),
        }
    }

    /// The request target sent upstream; borrowed when nothing is rewritten, which is the
    /// common case and saves an allocation per request.
    pub fn upstream_target<'a>(&self, path: &'a str, query: Option<&str>) -> Cow<'a, str> {
        let forwarded = if self.strip_prefix && self.prefix != "/" {
            path.get(self.prefix.len()..).unwrap_or("")
        } else {
            path
        };
        // Fast path: nothing to rewrite, so no allocation beyond the one PathAndQuery makes.
        if self.base_path.is_empty() && !forwarded.is_empty() && query.is_none() {
            return Cow::Borrowed(forwarded);
        }
        let mut target = String::with_capacity(
            self.base_path.len() + forwarded.len() + query.map_or(0, |q| q.len() + 1) + 1,
        );
        target.push_str(&self.base_path);
        if !forwarded.starts_with('/') {
            target.push('/');
        }
        target.push_str(forwarded);
        if let Some(query) = query {
            target.push('?');
            target.push_str(query);
        }
        Cow::Owned(target)
    }
}

/// `host:port` to dial; the port defaults to 80 (only plain-http upstreams are pooled here).
fn connect_target(authority: &Authority) -> String {
    let host = authority.host();
    let port = authority.port_u16().unwrap_or(80);
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(yaml: &str) -> RouteTable {
        RouteTable::from_config(&GatewayConfig::from_yaml(yaml).unwrap()).unwrap()
    }

    const ROUTES: &str = r#"
routes:
  - {name: root, pathPrefix: /, upstream: "http://root:80"}
  - {name: users, pathPrefix: /v1/users, upstream: "http://users:8080"}
  - {name: admin, pathPrefix: /v1/users/admin/, upstream: "http://admin:8080/base", stripPrefix: true}
"#;

    #[test]
    fn longest_segment_prefix_wins() {
        let table = table(ROUTES);
        let name = |path: &str| table.find(path).map(|r| r.name.to_string());
        assert_eq!(name("/v1/users").as_deref(), Some("users"));
        assert_eq!(name("/v1/users/42").as_deref(), Some("users"));
        assert_eq!(name("/v1/usersettings").as_deref(), Some("root"));
        assert_eq!(name("/v1/users/admin").as_deref(), Some("admin"));
        assert_eq!(name("/v1/users/admin/x").as_deref(), Some("admin"));
        assert_eq!(name("/other").as_deref(), Some("root"));
    }

    #[test]
    fn no_match_without_root_route() {
        let table = table("routes:\n  - {name: a, pathPrefix: /a, upstream: 'http://a'}\n");
        assert!(table.find("/b").is_none());
        assert!(table.find("/ab").is_none());
        assert!(table.find("/a/b").is_some());
    }

    #[test]
    fn strip_prefix_and_base_path_rewrite() {
        let table = table(ROUTES);
        let admin = table.find("/v1/users/admin/x").unwrap();
        assert_eq!(
            admin
                .upstream_path_and_query("/v1/users/admin/x", Some("a=1"))
                .unwrap()
                .as_str(),
            "/base/x?a=1"
        );
        assert_eq!(
            admin
                .upstream_path_and_query("/v1/users/admin", None)
                .unwrap()
                .as_str(),
            "/base/"
        );
        let users = table.find("/v1/users/1").unwrap();
        assert_eq!(
            users
                .upstream_path_and_query("/v1/users/1", Some("q"))
                .unwrap()
                .as_str(),
            "/v1/users/1?q"
        );
    }

    #[test]
    fn method_rules_override_the_route_default() {
        let table = table(
            r#"
routes:
  - name: catalog
    pathPrefix: /v1/products
    upstream: "http://catalog:8080"
    rules:
      - {methods: [GET, HEAD], public: true}
      - {methods: [POST, DELETE], roles: [admin], scopes: ["catalog:write"]}
auth: {jwt: {issuer: i, audiences: [a], hs256SecretEnv: S}}
"#,
        );
        let route = table.find("/v1/products/1").unwrap();
        assert!(route.access(&Method::GET).is_public());
        assert!(route.access(&Method::HEAD).is_public());
        assert_eq!(
            route.access(&Method::POST),
            &Access::Token {
                roles: vec![Box::from("admin")].into(),
                scopes: vec![Box::from("catalog:write")].into(),
            }
        );
        // PUT is in no rule: the route default (not public) applies.
        assert_eq!(
            route.access(&Method::PUT),
            &Access::Token {
                roles: Box::default(),
                scopes: Box::default()
            }
        );
    }
}
