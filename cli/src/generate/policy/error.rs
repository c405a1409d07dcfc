//! Why a policy could not be generated: each error names the resource
//! (`Kind/name`) and, where one is at fault, the container.

use std::fmt;

/// A pod spec accord cannot turn into a policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PolicyError {
    /// The object is not one of the pod-bearing kinds, or has no pod spec.
    NotAPod {
        /// `Kind/name`.
        resource: String,
        /// What is wrong.
        detail: String,
    },
    /// The image is not pinned by `@sha256:<64 hex>`; `--pin-images`
    /// resolves tags to digests.
    ImageNotPinned {
        /// `Kind/name`.
        resource: String,
        /// The container's name.
        container: String,
        /// The image as written.
        image: String,
    },
    /// No image facts (entrypoint, env, user, …) were given for the image.
    ImageFactsMissing {
        /// `Kind/name`.
        resource: String,
        /// The container's name.
        container: String,
        /// The image as written.
        image: String,
    },
    /// An environment variable (or `envFrom`) refers to something the
    /// input does not hold, e.g. a ConfigMap or key that is not there.
    EnvRef {
        /// `Kind/name`.
        resource: String,
        /// The container's name.
        container: String,
        /// The variable (or `envFrom`).
        variable: String,
        /// What is missing.
        detail: String,
    },
    /// The user or group (image `USER`) cannot be resolved to numbers.
    UnknownUser {
        /// `Kind/name`.
        resource: String,
        /// The container's name.
        container: String,
        /// The image's `USER`.
        user: String,
    },
    /// Neither the pod spec nor the image gives a command.
    NoCommand {
        /// `Kind/name`.
        resource: String,
        /// The container's name.
        container: String,
    },
    /// A feature accord refuses (privileged containers, host volumes, …).
    Unsupported {
        /// `Kind/name`.
        resource: String,
        /// The container's name, if one is at fault.
        container: Option<String>,
        /// What is refused, and why.
        what: String,
    },
    /// An `accord.dev/*` annotation is malformed.
    BadAnnotation {
        /// `Kind/name`.
        resource: String,
        /// The annotation's key.
        annotation: String,
        /// What is wrong with its value.
        detail: String,
    },
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PolicyError::NotAPod { resource, detail } => write!(f, "{resource}: {detail}"),
            PolicyError::ImageNotPinned {
                resource,
                container,
                image,
            } => write!(
                f,
                "{resource}, container {container}: image {image:?} is not pinned by digest \
                 (write it as NAME@sha256:DIGEST, or use --pin-images)"
            ),
            PolicyError::ImageFactsMissing {
                resource,
                container,
                image,
            } => write!(
                f,
                "{resource}, container {container}: no image facts for {image:?} (fetch them from \
                 the registry or give them with --image-facts)"
            ),
            PolicyError::EnvRef {
                resource,
                container,
                variable,
                detail,
            } => write!(
                f,
                "{resource}, container {container}: environment variable {variable}: {detail}"
            ),
            PolicyError::UnknownUser {
                resource,
                container,
                user,
            } => write!(
                f,
                "{resource}, container {container}: user {user:?} is not numeric and the image's \
                 /etc/passwd or /etc/group does not name it"
            ),
            PolicyError::NoCommand {
                resource,
                container,
            } => write!(
                f,
                "{resource}, container {container}: neither the pod spec (command/args) nor the \
                 image (Entrypoint/Cmd) gives a command"
            ),
            PolicyError::Unsupported {
                resource,
                container: Some(container),
                what,
            } => {
                write!(f, "{resource}, container {container}: {what}")
            }
            PolicyError::Unsupported {
                resource,
                container: None,
                what,
            } => write!(f, "{resource}: {what}"),
            PolicyError::BadAnnotation {
                resource,
                annotation,
                detail,
            } => {
                write!(f, "{resource}: annotation {annotation}: {detail}")
            }
        }
    }
}

impl std::error::Error for PolicyError {}
