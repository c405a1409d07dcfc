//! The Kubernetes labels and annotations that mark coordinator pods: set
//! by `deploy/coordinator.yaml`, selected by the Kubernetes discovery.

/// The label every coordinator pod carries (and the StatefulSet and both
/// services select on).
pub const NAME_LABEL: &str = "app.kubernetes.io/name";

/// The value of [`NAME_LABEL`] on coordinator pods.
pub const NAME_VALUE: &str = "coordinator";

/// [`NAME_LABEL`]`=`[`NAME_VALUE`], as a list selector.
pub const NAME_SELECTOR: &str = "app.kubernetes.io/name=coordinator";

/// The annotation that marks a pod as a coordinator replica (discovery
/// keeps only pods where it equals [`POD_ROLE_VALUE`]).
pub const POD_ROLE_ANNOTATION: &str = "accord.dev/pod-role";

/// The value of [`POD_ROLE_ANNOTATION`] on coordinator pods.
pub const POD_ROLE_VALUE: &str = "coordinator";

/// The StatefulSet, its governing service and the service account.
pub const STATEFULSET_NAME: &str = "coordinator";

/// The service of the ready replicas only.
pub const READY_SERVICE_NAME: &str = "coordinator-ready";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selector_is_label_equals_value() {
        assert_eq!(NAME_SELECTOR, format!("{NAME_LABEL}={NAME_VALUE}"));
    }
}
