//! Authentication by bearer token and RBAC authorization, for the identities a test registers.
//!
//! Tokens a test asks for (see [`crate::KubeSim::service_account`]) stand for a ServiceAccount,
//! and their requests are authorized the way the apiserver's RBAC authorizer does it: the rules of
//! the (Cluster)Roles bound to the account, its groups or `system:authenticated`, by
//! ClusterRoleBindings anywhere and RoleBindings in the request's namespace. Any other caller,
//! the kubeconfig's own token included, is trusted as cluster-admin (`system:masters`), so tests
//! that do not care about RBAC are unaffected.
//!
//! Left out: aggregated ClusterRoles (`aggregationRule`), impersonation, token expiry and the
//! check that the ServiceAccount still exists.

use serde_json::{Value, json};

use crate::resources::GroupResource;
use crate::state::SimState;
use crate::status::{ApiError, ApiResult, qualified};

/// Who a request comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub user: String,
    pub groups: Vec<String>,
}

impl Identity {
    pub fn service_account(namespace: &str, name: &str) -> Self {
        Self {
            user: format!("system:serviceaccount:{namespace}:{name}"),
            groups: vec![
                "system:serviceaccounts".to_owned(),
                format!("system:serviceaccounts:{namespace}"),
                "system:authenticated".to_owned(),
            ],
        }
    }

    fn is_subject(&self, subject: &Value, binding_namespace: &str) -> bool {
        let field = |k: &str| subject.get(k).and_then(Value::as_str).unwrap_or("");
        match field("kind") {
            "ServiceAccount" => {
                // A RoleBinding's subject without a namespace means the binding's own.
                let ns = match field("namespace") {
                    "" => binding_namespace,
                    ns => ns,
                };
                self.user == format!("system:serviceaccount:{ns}:{}", field("name"))
            }
            "User" => self.user == field("name"),
            "Group" => self.groups.iter().any(|g| g == field("name")),
            _ => false,
        }
    }
}

/// What a resource request asks to do, as the authorizer sees it.
#[derive(Debug)]
pub struct Attributes<'a> {
    /// `get`, `list`, `watch`, `create`, `update`, `patch`, `delete`, `deletecollection`.
    pub verb: &'a str,
    pub group: &'a str,
    pub resource: &'a str,
    pub subresource: Option<&'a str>,
    /// Empty for cluster-scoped resources and requests across all namespaces.
    pub namespace: &'a str,
    /// Empty for collections.
    pub name: &'a str,
}

/// `Ok` when some rule bound to `who` allows `what`; a 403 `Status` shaped like the apiserver's
/// otherwise.
pub fn authorize(state: &SimState, who: &Identity, what: &Attributes<'_>) -> ApiResult<()> {
    if allowed(state, who, what) {
        return Ok(());
    }
    let resource = match what.subresource {
        Some(sub) => format!("{}/{sub}", what.resource),
        None => what.resource.to_owned(),
    };
    let scope = if what.namespace.is_empty() {
        "at the cluster scope".to_owned()
    } else {
        format!("in the namespace \"{}\"", what.namespace)
    };
    let subject = match what.name {
        "" => qualified(what.group, what.resource),
        name => format!("{} \"{name}\"", qualified(what.group, what.resource)),
    };
    let mut details = json!({"group": what.group, "kind": what.resource});
    if !what.name.is_empty() {
        details["name"] = json!(what.name);
    }
    Err(ApiError::forbidden_because(
        format!(
            "{subject} is forbidden: User \"{}\" cannot {} resource \"{resource}\" in API group \"{}\" {scope}",
            who.user, what.verb, what.group
        ),
        details,
    ))
}

fn allowed(state: &SimState, who: &Identity, what: &Attributes<'_>) -> bool {
    let rbac = |resource: &str| GroupResource {
        group: "rbac.authorization.k8s.io".into(),
        resource: resource.into(),
    };
    let role_rules = |kind: &str, namespace: &str, name: &str| -> Vec<Value> {
        let (gr, ns) = match kind {
            "ClusterRole" => (rbac("clusterroles"), ""),
            "Role" => (rbac("roles"), namespace),
            _ => return Vec::new(),
        };
        state
            .store
            .get(&gr, ns, name)
            .and_then(|role| role.get("rules").and_then(Value::as_array).cloned())
            .unwrap_or_default()
    };
    let (cluster_bindings, _) = state.store.list(&rbac("clusterrolebindings"), None);
    let (namespace_bindings, _) = if what.namespace.is_empty() {
        (Vec::new(), 0)
    } else {
        state
            .store
            .list(&rbac("rolebindings"), Some(what.namespace))
    };
    let bound = |binding: &Value| {
        let binding_ns = binding
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .unwrap_or("");
        binding
            .get("subjects")
            .and_then(Value::as_array)
            .is_some_and(|subjects| subjects.iter().any(|s| who.is_subject(s, binding_ns)))
    };
    let role_ref = |binding: &Value, field: &str| {
        binding
            .pointer(&format!("/roleRef/{field}"))
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned()
    };
    cluster_bindings
        .iter()
        .filter(|b| bound(b))
        .flat_map(|b| role_rules("ClusterRole", "", &role_ref(b, "name")))
        .chain(
            namespace_bindings
                .iter()
                .filter(|b| bound(b))
                .flat_map(|b| {
                    role_rules(&role_ref(b, "kind"), what.namespace, &role_ref(b, "name"))
                }),
        )
        .any(|rule| rule_allows(&rule, what))
}

/// One PolicyRule against one request, as `k8s.io/component-helpers/auth/rbac` matches them.
fn rule_allows(rule: &Value, what: &Attributes<'_>) -> bool {
    let list = |k: &str| -> Vec<&str> {
        rule.get(k)
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default()
    };
    let verbs = list("verbs");
    let groups = list("apiGroups");
    let resources = list("resources");
    let names = list("resourceNames");
    let requested = match what.subresource {
        Some(sub) => format!("{}/{sub}", what.resource),
        None => what.resource.to_owned(),
    };
    let resource_matches = resources.iter().any(|r| {
        *r == "*"
            || *r == requested
            || what
                .subresource
                .is_some_and(|sub| r.strip_prefix("*/") == Some(sub))
    });
    verbs.iter().any(|v| *v == "*" || *v == what.verb)
        && groups.iter().any(|g| *g == "*" || *g == what.group)
        && resource_matches
        && (names.is_empty() || names.contains(&what.name))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attrs<'a>(verb: &'a str, resource: &'a str, sub: Option<&'a str>) -> Attributes<'a> {
        Attributes {
            verb,
            group: "apps",
            resource,
            subresource: sub,
            namespace: "shop",
            name: "web",
        }
    }

    #[test]
    fn rules_match_verbs_groups_resources_subresources_and_names() {
        let rule =
            json!({"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["get", "patch"]});
        assert!(rule_allows(&rule, &attrs("get", "deployments", None)));
        assert!(!rule_allows(&rule, &attrs("delete", "deployments", None)));
        assert!(!rule_allows(&rule, &attrs("get", "statefulsets", None)));
        // A subresource is a resource of its own...
        assert!(!rule_allows(
            &rule,
            &attrs("get", "deployments", Some("status"))
        ));
        // ...unless named, or matched by `*/sub` or `*`.
        let status = json!({"apiGroups": ["apps"], "resources": ["*/status"], "verbs": ["*"]});
        assert!(rule_allows(
            &status,
            &attrs("patch", "deployments", Some("status"))
        ));
        assert!(!rule_allows(&status, &attrs("patch", "deployments", None)));
        let named = json!({"apiGroups": ["*"], "resources": ["*"], "verbs": ["get"], "resourceNames": ["api"]});
        assert!(!rule_allows(&named, &attrs("get", "deployments", None)));
        let mut api = attrs("get", "deployments", None);
        api.name = "api";
        assert!(rule_allows(&named, &api));
        // Another API group does not match.
        let core = json!({"apiGroups": [""], "resources": ["deployments"], "verbs": ["get"]});
        assert!(!rule_allows(&core, &attrs("get", "deployments", None)));
    }

    #[test]
    fn service_account_subjects_match_by_namespace_user_and_group() {
        let who = Identity::service_account("ops", "operator");
        assert!(who.is_subject(
            &json!({"kind": "ServiceAccount", "name": "operator", "namespace": "ops"}),
            "elsewhere"
        ));
        assert!(who.is_subject(
            &json!({"kind": "ServiceAccount", "name": "operator"}),
            "ops"
        ));
        assert!(!who.is_subject(
            &json!({"kind": "ServiceAccount", "name": "operator", "namespace": "shop"}),
            "ops"
        ));
        assert!(who.is_subject(
            &json!({"kind": "Group", "name": "system:serviceaccounts:ops"}),
            ""
        ));
        assert!(who.is_subject(
            &json!({"kind": "User", "name": "system:serviceaccount:ops:operator"}),
            ""
        ));
        assert!(!who.is_subject(&json!({"kind": "Group", "name": "system:masters"}), ""));
    }
}
