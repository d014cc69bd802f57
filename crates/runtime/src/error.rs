//! One mapping from a service's errors to `tonic::Status` with rich details.
//!
//! Services keep their own error enum and convert it into [`ApiError`]; this module is the only
//! place that decides gRPC codes and error details, so every service answers the same way.

use std::collections::HashMap;

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, FieldViolation, StatusExt};

/// A refusal or failure, in the terms a gRPC client understands.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The request itself is malformed; each violation names the field (google.rpc.BadRequest).
    #[error("invalid argument: {}", describe_violations(.0))]
    InvalidArgument(Vec<Violation>),
    /// No, or an unusable, credential.
    #[error("{message}")]
    Unauthenticated {
        reason: &'static str,
        message: String,
    },
    /// The caller is known but may not do this.
    #[error("{message}")]
    PermissionDenied {
        reason: &'static str,
        message: String,
    },
    /// The named resource does not exist (or is not visible to the caller).
    #[error("{resource_type} {name} not found")]
    NotFound {
        resource_type: &'static str,
        name: String,
    },
    /// The resource already exists.
    #[error("{message}")]
    AlreadyExists {
        reason: &'static str,
        message: String,
        metadata: Vec<(&'static str, String)>,
    },
    /// The system is not in a state where the request can be carried out.
    #[error("{message}")]
    FailedPrecondition {
        reason: &'static str,
        message: String,
        metadata: Vec<(&'static str, String)>,
    },
    /// Too many attempts or messages in a while: refused until `retry_after` has passed.
    #[error("{message}")]
    ResourceExhausted {
        reason: &'static str,
        message: String,
        retry_after: std::time::Duration,
    },
    /// The server is at a capacity it keeps on purpose (memory); retry in a moment.
    #[error("{message}")]
    Busy {
        reason: &'static str,
        message: String,
        retry_after: std::time::Duration,
    },
    /// A dependency (database, another service) could not be reached in time.
    #[error("unavailable: {message}")]
    Unavailable { message: String },
    /// The call's deadline passed before the work finished.
    #[error("deadline exceeded: {message}")]
    DeadlineExceeded { message: String },
    /// Anything else: logged in full, reported to the client without detail.
    #[error("internal error: {0:#}")]
    Internal(#[source] anyhow::Error),
}

/// One field violation of an INVALID_ARGUMENT answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub field: String,
    pub description: String,
}

/// Most field violations one answer names; when there are more, one last violation on the
/// list they belong to counts the rest. They travel in the trailers, which clients refuse
/// past 8 KiB (grpc-java) to 16 KiB (C-core).
pub const MAX_VIOLATIONS_SENT: usize = 50;
/// Most bytes of field names and descriptions one answer names (base64 in the trailers).
pub const MAX_VIOLATION_BYTES: usize = 3 * 1_024;
/// Most bytes of a status message (`grpc-message`).
pub const MAX_STATUS_MESSAGE: usize = 1_024;

/// The violations an answer carries: all of them when they fit (a list already cut to 50 with
/// its count, as the staff sync makes, fits), otherwise the first ones that do and a last one
/// counting the rest, on the list the first one left out belongs to (`records[7].email`:
/// `records`).
fn violations_sent(mut violations: Vec<Violation>) -> Vec<Violation> {
    let mut bytes = 0;
    let fitting = violations
        .iter()
        .take(MAX_VIOLATIONS_SENT)
        .take_while(|v| {
            bytes += v.field.len() + v.description.len();
            bytes <= MAX_VIOLATION_BYTES
        })
        .count()
        .max(1);
    let all_fit = violations.len() <= MAX_VIOLATIONS_SENT + 1
        && violations
            .iter()
            .map(|v| v.field.len() + v.description.len())
            .sum::<usize>()
            <= MAX_VIOLATION_BYTES;
    if all_fit || fitting >= violations.len() {
        return violations;
    }
    let rest = violations.split_off(fitting);
    let list = rest[0]
        .field
        .split('[')
        .next()
        .filter(|root| !root.is_empty())
        .unwrap_or("request")
        .to_string();
    violations.push(Violation {
        field: list,
        description: format!("{} more invalid fields are not listed", rest.len()),
    });
    violations
}

fn describe_violations(violations: &[Violation]) -> String {
    violations
        .iter()
        .map(|v| format!("{}: {}", v.field, v.description))
        .collect::<Vec<_>>()
        .join("; ")
}

/// `message` cut to [`MAX_STATUS_MESSAGE`] bytes at a character boundary, marked when cut.
pub fn bounded_message(message: String) -> String {
    if message.len() <= MAX_STATUS_MESSAGE {
        return message;
    }
    let tail = " …";
    let mut end = MAX_STATUS_MESSAGE - tail.len();
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}{tail}", &message[..end])
}

/// Collects field violations while a request is parsed, so one answer names every bad field.
#[derive(Debug, Default)]
pub struct Violations(Vec<Violation>);

impl Violations {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn add(&mut self, field: impl Into<String>, description: impl Into<String>) {
        self.0.push(Violation {
            field: field.into(),
            description: description.into(),
        });
    }

    /// Records the error of a parse and returns its value when it parsed.
    pub fn take<T>(&mut self, field: impl Into<String>, parsed: Result<T, String>) -> Option<T> {
        match parsed {
            Ok(value) => Some(value),
            Err(description) => {
                self.add(field, description);
                None
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// `Ok(())` when nothing was recorded, otherwise the INVALID_ARGUMENT error.
    pub fn finish(self) -> Result<(), ApiError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(ApiError::InvalidArgument(self.0))
        }
    }

    /// Returns the parsed value when nothing was recorded, otherwise the INVALID_ARGUMENT error.
    ///
    /// `value` is only called when every field parsed, so it may unwrap the collected options.
    pub fn finish_with<T>(self, value: impl FnOnce() -> Option<T>) -> Result<T, ApiError> {
        self.finish()?;
        value().ok_or_else(|| ApiError::Internal(anyhow::anyhow!("parsed value missing")))
    }
}

impl ApiError {
    /// An INVALID_ARGUMENT answer with a single field violation.
    pub fn invalid(field: impl Into<String>, description: impl Into<String>) -> Self {
        Self::InvalidArgument(vec![Violation {
            field: field.into(),
            description: description.into(),
        }])
    }

    pub fn permission_denied(reason: &'static str, message: impl Into<String>) -> Self {
        Self::PermissionDenied {
            reason,
            message: message.into(),
        }
    }

    pub fn failed_precondition(reason: &'static str, message: impl Into<String>) -> Self {
        Self::FailedPrecondition {
            reason,
            message: message.into(),
            metadata: Vec::new(),
        }
    }

    pub fn not_found(resource_type: &'static str, name: impl Into<String>) -> Self {
        Self::NotFound {
            resource_type,
            name: name.into(),
        }
    }

    pub fn internal(error: impl Into<anyhow::Error>) -> Self {
        Self::Internal(error.into())
    }

    /// Maps the error to a status. `domain` names the service in google.rpc.ErrorInfo
    /// (for example `identity.portal`). Internal errors are logged here and reach the client
    /// only as a generic message.
    pub fn into_status(self, domain: &str) -> Status {
        let status = self.into_unbounded_status(domain);
        if status.message().len() <= MAX_STATUS_MESSAGE {
            return status;
        }
        let message = bounded_message(status.message().to_string());
        Status::with_details(status.code(), message, status.details().to_vec().into())
    }

    fn into_unbounded_status(self, domain: &str) -> Status {
        let info = |reason: &str, metadata: Vec<(&'static str, String)>| {
            let metadata: HashMap<String, String> = metadata
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect();
            ErrorDetails::with_error_info(reason, domain, metadata)
        };
        match self {
            ApiError::InvalidArgument(violations) => {
                let violations = violations_sent(violations);
                let message = bounded_message(format!(
                    "invalid request: {}",
                    describe_violations(&violations)
                ));
                let violations: Vec<FieldViolation> = violations
                    .into_iter()
                    .map(|v| FieldViolation::new(v.field, v.description))
                    .collect();
                Status::with_error_details(
                    Code::InvalidArgument,
                    message,
                    ErrorDetails::with_bad_request(violations),
                )
            }
            ApiError::Unauthenticated { reason, message } => {
                Status::with_error_details(Code::Unauthenticated, message, info(reason, vec![]))
            }
            ApiError::PermissionDenied { reason, message } => {
                Status::with_error_details(Code::PermissionDenied, message, info(reason, vec![]))
            }
            ApiError::NotFound {
                resource_type,
                name,
            } => {
                let message = format!("{resource_type} {name} not found");
                let mut details = info("NOT_FOUND", vec![]);
                details.set_resource_info(resource_type, name, "", "not found");
                Status::with_error_details(Code::NotFound, message, details)
            }
            ApiError::AlreadyExists {
                reason,
                message,
                metadata,
            } => Status::with_error_details(Code::AlreadyExists, message, info(reason, metadata)),
            ApiError::FailedPrecondition {
                reason,
                message,
                metadata,
            } => Status::with_error_details(
                Code::FailedPrecondition,
                message,
                info(reason, metadata),
            ),
            ApiError::ResourceExhausted {
                reason,
                message,
                retry_after,
            } => {
                let mut details = info(reason, vec![]);
                details.set_retry_info(Some(retry_after));
                Status::with_error_details(Code::ResourceExhausted, message, details)
            }
            ApiError::Busy {
                reason,
                message,
                retry_after,
            } => {
                let mut details = info(reason, vec![]);
                details.set_retry_info(Some(retry_after));
                Status::with_error_details(Code::Unavailable, message, details)
            }
            ApiError::Unavailable { message } => {
                tracing::warn!(%message, "dependency unavailable");
                let mut details = info("UNAVAILABLE", vec![]);
                details.set_retry_info(Some(std::time::Duration::from_millis(500)));
                Status::with_error_details(Code::Unavailable, message, details)
            }
            ApiError::DeadlineExceeded { message } => Status::deadline_exceeded(message),
            ApiError::Internal(error) => {
                tracing::error!(error = format!("{error:#}"), "internal error");
                Status::internal("internal error")
            }
        }
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(error: sqlx::Error) -> Self {
        match &error {
            sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::PoolClosed => {
                tracing::warn!(error = %error, "database unavailable");
                ApiError::Unavailable {
                    message: "the database is unavailable; retry later".into(),
                }
            }
            _ => ApiError::Internal(error.into()),
        }
    }
}

/// Reads the ErrorInfo reason of a status, if it carries one (used by clients of other services).
pub fn status_reason(status: &Status) -> Option<String> {
    status
        .check_error_details()
        .ok()
        .and_then(|d| d.error_info().map(|i| i.reason.clone()))
}

/// Reads the RetryInfo delay of a status, if it carries one.
pub fn status_retry_after(status: &Status) -> Option<std::time::Duration> {
    status
        .check_error_details()
        .ok()
        .and_then(|d| d.retry_info().and_then(|r| r.retry_delay))
}

/// Reads the field violations of a status, as `(field, description)` pairs.
pub fn status_violations(status: &Status) -> Vec<(String, String)> {
    status
        .check_error_details()
        .ok()
        .and_then(|d| {
            d.bad_request().map(|b| {
                b.field_violations
                    .iter()
                    .map(|v| (v.field.clone(), v.description.clone()))
                    .collect()
            })
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_argument_carries_every_field_violation() {
        let mut v = Violations::new();
        v.add("email", "must not be empty");
        v.add("records[3].mis_id", "duplicates records[1].mis_id");
        let status = v.finish().unwrap_err().into_status("test.portal");
        assert_eq!(status.code(), Code::InvalidArgument);
        let violations = status_violations(&status);
        assert_eq!(violations.len(), 2);
        assert_eq!(violations[1].0, "records[3].mis_id");
    }

    #[test]
    fn an_answer_names_the_first_fifty_bad_fields_and_counts_the_rest() {
        let mut v = Violations::new();
        for i in 0..200 {
            v.add(format!("school_ids[{i}]"), "is not a valid id (a UUID)");
        }
        let status = v.finish().unwrap_err().into_status("test.portal");
        assert_eq!(status.code(), Code::InvalidArgument);
        let violations = status_violations(&status);
        assert_eq!(violations.len(), MAX_VIOLATIONS_SENT + 1);
        assert_eq!(violations[49].0, "school_ids[49]");
        assert_eq!(violations[50].0, "school_ids");
        assert_eq!(violations[50].1, "150 more invalid fields are not listed");
        assert!(status.message().len() <= MAX_STATUS_MESSAGE);
    }

    #[test]
    fn a_list_already_cut_with_its_count_is_sent_as_it_is() {
        let mut v = Violations::new();
        for i in 0..50 {
            v.add(format!("records[{i}].email"), "is not an email");
        }
        v.add("records", "4950 more invalid fields are not listed");
        let status = v.finish().unwrap_err().into_status("test.portal");
        let violations = status_violations(&status);
        assert_eq!(violations.len(), 51);
        assert!(violations[50].1.starts_with("4950 more"));
    }

    #[test]
    fn long_violations_keep_the_trailers_under_eight_kibibytes() {
        let mut v = Violations::new();
        for i in 0..200 {
            v.add(
                format!("school_access.school_ids[{i}]"),
                format!("`{}` is not a valid id (a UUID)", "x".repeat(64)),
            );
        }
        let status = v.finish().unwrap_err().into_status("test.portal");
        let violations = status_violations(&status);
        let named = violations.len() - 1;
        assert!((1..MAX_VIOLATIONS_SENT).contains(&named), "{named}");
        assert_eq!(violations[named].0, "school_access.school_ids");
        assert_eq!(
            violations[named].1,
            format!("{} more invalid fields are not listed", 200 - named)
        );
        // Details travel base64-encoded beside the message.
        let trailers = status.details().len() * 4 / 3 + status.message().len();
        assert!(trailers < 7 * 1024, "{trailers} bytes");
    }

    #[test]
    fn a_long_message_is_cut_at_a_character_boundary() {
        let cut = bounded_message("é".repeat(MAX_STATUS_MESSAGE));
        assert!(cut.len() <= MAX_STATUS_MESSAGE);
        assert!(cut.ends_with(" …"));
        assert_eq!(bounded_message("short".into()), "short");
    }

    #[test]
    fn business_refusals_carry_an_error_info_reason() {
        let status = ApiError::failed_precondition("STAFF_NOT_IN_TRUST_MIS", "add them first")
            .into_status("invitation.portal");
        assert_eq!(status.code(), Code::FailedPrecondition);
        assert_eq!(
            status_reason(&status).as_deref(),
            Some("STAFF_NOT_IN_TRUST_MIS")
        );
    }

    #[test]
    fn internal_errors_never_reach_the_client() {
        let status = ApiError::internal(anyhow::anyhow!("relation \"x\" does not exist"))
            .into_status("identity.portal");
        assert_eq!(status.code(), Code::Internal);
        assert!(!status.message().contains("relation"));
    }
}
