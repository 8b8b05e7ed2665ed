//! Which cluster-wide policies govern a pod (docs/design/cluster-policies.md): a pure function
//! of the policies' selectors, the pod's namespace and labels, and nothing the pod author can
//! set to opt out. The webhook asks it for every pod, with the scopes of the
//! `ClusterModelValidation`s ([`crate::cluster_policy`]).

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::core::{Selector, SelectorExt};

/// Where one cluster policy applies.
#[derive(Clone, Debug, PartialEq)]
pub struct Scope {
    /// The policy's name (policies apply in name order).
    pub name: String,
    /// `spec.namespaceSelector`: required; `{}` selects every namespace.
    namespaces: Selector,
    /// `spec.podSelector`: absent or `{}` selects every pod of those namespaces.
    pods: Selector,
}

/// A selector that cannot be evaluated, naming its field.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {problem}")]
pub struct ScopeError {
    /// E.g. `spec.namespaceSelector`.
    pub field: &'static str,
    /// What is wrong.
    pub problem: String,
}

impl Scope {
    /// The scope of the policy `name` from its selectors.
    pub fn new(
        name: impl Into<String>,
        namespace_selector: &LabelSelector,
        pod_selector: Option<&LabelSelector>,
    ) -> Result<Scope, ScopeError> {
        let parse = |field: &'static str, s: &LabelSelector| {
            Selector::try_from(s.clone()).map_err(|e| ScopeError {
                field,
                problem: format!("{e}: use matchLabels, or matchExpressions with In, NotIn, Exists or DoesNotExist"),
            })
        };
        Ok(Scope {
            name: name.into(),
            namespaces: parse("spec.namespaceSelector", namespace_selector)?,
            pods: match pod_selector {
                Some(s) => parse("spec.podSelector", s)?,
                None => Selector::default(),
            },
        })
    }

    /// Whether the namespace selector matches a namespace with `namespace_labels`.
    pub fn selects_namespace(&self, namespace_labels: &BTreeMap<String, String>) -> bool {
        self.namespaces.matches(namespace_labels)
    }

    /// Whether this policy governs a pod with `pod_labels` in a namespace with
    /// `namespace_labels`.
    pub fn governs(
        &self,
        namespace_labels: &BTreeMap<String, String>,
        pod_labels: &BTreeMap<String, String>,
    ) -> bool {
        self.namespaces.matches(namespace_labels) && self.pods.matches(pod_labels)
    }
}

/// Namespaces no cluster policy governs besides the operator's own: the webhook is not called
/// there (deploy/base/webhook.yaml), because a cluster whose system pods wait on the operator
/// could not restart the operator's own dependencies.
pub const EXEMPT_NAMESPACES: &[&str] = &["kube-system"];

impl AsRef<Scope> for Scope {
    fn as_ref(&self) -> &Scope {
        self
    }
}

/// Whether `namespace` is out of every cluster policy's reach whatever its labels: the
/// operator's own namespace and [`EXEMPT_NAMESPACES`].
pub fn exempt(namespace: &str, operator_namespace: &str) -> bool {
    namespace == operator_namespace || EXEMPT_NAMESPACES.contains(&namespace)
}

/// Whether cluster policies may govern pods in `namespace`, whose labels are
/// `namespace_labels`: it is not [`exempt`] and `--cluster-policy-namespaces` (`governable`)
/// selects it. The one statement of the reach rule: the webhook decides with it, and the status
/// controller counts namespaces and pods with it.
pub fn in_reach(
    namespace: &str,
    namespace_labels: &BTreeMap<String, String>,
    governable: &Selector,
    operator_namespace: &str,
) -> bool {
    !exempt(namespace, operator_namespace) && governable.matches(namespace_labels)
}

/// The policies that govern a pod, in name order. The operator's own namespace and
/// [`EXEMPT_NAMESPACES`] are never governed (the operator must be able to start itself); no pod
/// label, annotation or namespace opt-out label removes a policy that selects the pod.
pub fn governing<'a, T: AsRef<Scope>>(
    policies: &'a [T],
    namespace: &str,
    namespace_labels: &BTreeMap<String, String>,
    pod_labels: &BTreeMap<String, String>,
    operator_namespace: &str,
) -> Vec<&'a T> {
    if exempt(namespace, operator_namespace) {
        return Vec::new();
    }
    let mut found: Vec<&T> = policies
        .iter()
        .filter(|p| p.as_ref().governs(namespace_labels, pod_labels))
        .collect();
    found.sort_by(|a, b| a.as_ref().name.cmp(&b.as_ref().name));
    found
}

#[cfg(test)]
mod tests {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement;

    use super::*;
    use crate::names::{IGNORE_NAMESPACE_LABEL, LABEL};

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn match_labels(pairs: &[(&str, &str)]) -> LabelSelector {
        LabelSelector {
            match_labels: Some(labels(pairs)),
            match_expressions: None,
        }
    }

    fn expression(key: &str, operator: &str, values: &[&str]) -> LabelSelector {
        LabelSelector {
            match_labels: None,
            match_expressions: Some(vec![LabelSelectorRequirement {
                key: key.into(),
                operator: operator.into(),
                values: (!values.is_empty())
                    .then(|| values.iter().map(|v| v.to_string()).collect()),
            }]),
        }
    }

    fn names(found: &[&Scope]) -> Vec<String> {
        found.iter().map(|s| s.name.clone()).collect()
    }

    #[test]
    fn every_matching_policy_applies_in_name_order() {
        let scopes = [
            Scope::new("zeta", &LabelSelector::default(), None).unwrap(),
            Scope::new("alpha", &match_labels(&[("team-type", "ml")]), None).unwrap(),
            Scope::new("other-team", &match_labels(&[("team-type", "web")]), None).unwrap(),
        ];
        let ns = labels(&[("team-type", "ml")]);
        let found = governing(&scopes, "team-a", &ns, &labels(&[]), "mvo-system");
        assert_eq!(names(&found), ["alpha", "zeta"]);
        // Twin: a namespace of another team gets only the cluster-wide one.
        let web = labels(&[("team-type", "web")]);
        let found = governing(&scopes, "team-b", &web, &labels(&[]), "mvo-system");
        assert_eq!(names(&found), ["other-team", "zeta"]);
    }

    #[test]
    fn a_pod_cannot_opt_out_with_labels_or_the_namespace_ignore_label() {
        let scopes = [Scope::new("org", &LabelSelector::default(), None).unwrap()];
        let ns = labels(&[(IGNORE_NAMESPACE_LABEL, "true")]);
        let pod = labels(&[(LABEL, "some-other-policy")]);
        let found = governing(&scopes, "team-a", &ns, &pod, "mvo-system");
        assert_eq!(names(&found), ["org"]);
        // A platform team that wants the ignore label honoured writes it into its selector.
        let honouring = [Scope::new(
            "org",
            &expression(IGNORE_NAMESPACE_LABEL, "DoesNotExist", &[]),
            None,
        )
        .unwrap()];
        assert!(governing(&honouring, "team-a", &ns, &pod, "mvo-system").is_empty());
        assert_eq!(
            governing(&honouring, "team-a", &labels(&[]), &pod, "mvo-system").len(),
            1,
            "twin: without the label the namespace is governed"
        );
    }

    #[test]
    fn the_operator_namespace_and_kube_system_are_never_governed() {
        let scopes = [Scope::new("org", &LabelSelector::default(), None).unwrap()];
        assert!(governing(&scopes, "kube-system", &labels(&[]), &labels(&[]), "x").is_empty());
    }

    #[test]
    fn the_operator_namespace_is_never_governed() {
        let scopes = [Scope::new("org", &LabelSelector::default(), None).unwrap()];
        assert!(
            governing(
                &scopes,
                "mvo-system",
                &labels(&[]),
                &labels(&[]),
                "mvo-system"
            )
            .is_empty()
        );
        assert_eq!(
            governing(&scopes, "default", &labels(&[]), &labels(&[]), "mvo-system").len(),
            1
        );
    }

    #[test]
    fn pod_selectors_narrow_and_in_expressions_work() {
        let scopes = [Scope::new(
            "servers",
            &expression("kubernetes.io/metadata.name", "In", &["team-a", "team-b"]),
            Some(&match_labels(&[("app", "llm-server")])),
        )
        .unwrap()];
        let ns = labels(&[("kubernetes.io/metadata.name", "team-a")]);
        let server = labels(&[("app", "llm-server")]);
        assert_eq!(governing(&scopes, "team-a", &ns, &server, "x").len(), 1);
        assert!(governing(&scopes, "team-a", &ns, &labels(&[("app", "batch")]), "x").is_empty());
        let c = labels(&[("kubernetes.io/metadata.name", "team-c")]);
        assert!(governing(&scopes, "team-c", &c, &server, "x").is_empty());
    }

    #[test]
    fn a_bad_selector_names_its_field() {
        let err = Scope::new(
            "p",
            &LabelSelector::default(),
            Some(&expression("a", "Near", &["b"])),
        )
        .unwrap_err();
        assert_eq!(err.field, "spec.podSelector");
        assert!(
            err.to_string()
                .contains("use matchLabels, or matchExpressions"),
            "{err}"
        );
        let err = Scope::new("p", &expression("a", "In", &[]), None).unwrap_err();
        assert_eq!(err.field, "spec.namespaceSelector");
    }
}
