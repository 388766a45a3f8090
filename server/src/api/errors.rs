//! The domain's errors as the API answers them: the one place where a registry, snapshot,
//! diff or build error gets its status. Messages are the errors' own; a server error's cause
//! is kept for the log (`error::Chain`) and never sent.

use crate::BuildError;
use crate::error::{ApiError, Cause};
use crate::exited::EndedError;
use crate::export::PatchError;
use crate::registry::RegistryError;
use crate::snapshot::SnapshotError;
use crate::sources::SourcesError;

impl From<RegistryError> for ApiError {
    fn from(e: RegistryError) -> ApiError {
        match e {
            RegistryError::Invalid(_) => ApiError::BadRequest(e.to_string()),
            RegistryError::UnknownInstance(_) | RegistryError::UnknownService(_) => {
                ApiError::NotFound(e.to_string())
            }
            RegistryError::WrongSecret(_) => ApiError::Forbidden(e.to_string()),
            RegistryError::TooMany(_) => ApiError::TooMany(e.to_string()),
            RegistryError::Store(e) => e.into(),
        }
    }
}

impl From<EndedError> for ApiError {
    fn from(e: EndedError) -> ApiError {
        match e {
            EndedError::Invalid(_) => ApiError::BadRequest(e.to_string()),
            EndedError::UnknownBuild(_) => ApiError::Conflict(e.to_string()),
            EndedError::Registry(e) => e.into(),
            EndedError::Build(e) => e.into(),
            EndedError::Store(e) => e.into(),
        }
    }
}

impl From<BuildError> for ApiError {
    fn from(e: BuildError) -> ApiError {
        match e {
            BuildError::Store(e) => e.into(),
            BuildError::Stored { .. } => ApiError::internal(e),
            BuildError::Unreachable { .. } => ApiError::BadGateway(e.to_string()),
        }
    }
}

impl From<SnapshotError> for ApiError {
    fn from(e: SnapshotError) -> ApiError {
        let message = e.to_string();
        match e {
            SnapshotError::Invalid(_) => ApiError::BadRequest(message),
            SnapshotError::UnknownService(_)
            | SnapshotError::NotFound(_)
            | SnapshotError::UnknownBuild(_) => ApiError::NotFound(message),
            SnapshotError::NoLiveInstances(_) | SnapshotError::NoMatch { .. } => {
                ApiError::Conflict(message)
            }
            SnapshotError::NoAnswer { .. } => ApiError::BadGateway(message),
            SnapshotError::Store(e) => e.into(),
            SnapshotError::Build(e) => e.into(),
            SnapshotError::Corrupt { .. } => ApiError::internal(e),
            SnapshotError::NoSession { .. } => ApiError::NotFound(message),
            SnapshotError::Pending { source, .. } => {
                let unavailable = source.is_unavailable();
                let source = Some(Box::new(source) as Cause);
                if unavailable {
                    ApiError::Unavailable { message, source }
                } else {
                    ApiError::Internal { message, source }
                }
            }
        }
    }
}

impl From<SourcesError> for ApiError {
    fn from(e: SourcesError) -> ApiError {
        match e {
            SourcesError::Invalid(_) => ApiError::BadRequest(e.to_string()),
            SourcesError::TooLarge(_) => ApiError::PayloadTooLarge(e.to_string()),
            SourcesError::UnknownBuild(_) => ApiError::NotFound(e.to_string()),
            SourcesError::Store(e) => e.into(),
            SourcesError::StoredMeta { .. }
            | SourcesError::StoredSource { .. }
            | SourcesError::Task(_) => ApiError::internal(e),
        }
    }
}

impl From<PatchError> for ApiError {
    fn from(e: PatchError) -> ApiError {
        match e {
            PatchError::Snapshot(e) => e.into(),
            PatchError::Invalid(message) => ApiError::BadRequest(message),
        }
    }
}

#[cfg(test)]
mod tests {
    use axum::http::StatusCode;

    use super::*;
    use crate::store::StoreError;

    #[test]
    fn domain_errors_keep_their_statuses_and_messages() {
        let cases: Vec<(ApiError, StatusCode, &str)> = vec![
            (
                RegistryError::UnknownInstance("i0".into()).into(),
                StatusCode::NOT_FOUND,
                "no live instance i0: register again",
            ),
            (
                SnapshotError::NoLiveInstances("svc".into()).into(),
                StatusCode::CONFLICT,
                "service \"svc\" has no live instances",
            ),
            (
                SnapshotError::NotFound(7).into(),
                StatusCode::NOT_FOUND,
                "no snapshot 7",
            ),
            (
                SnapshotError::UnknownBuild("ab".into()).into(),
                StatusCode::NOT_FOUND,
                "no build ab is stored",
            ),
            (
                SnapshotError::Pending {
                    what: "reset",
                    source: StoreError::Unavailable(sqlx::Error::PoolTimedOut),
                }
                .into(),
                StatusCode::SERVICE_UNAVAILABLE,
                "database unavailable; no count is lost: the server finishes the reset when the \
                 database is back",
            ),
            (
                SnapshotError::NoSession {
                    service: "svc".into(),
                    name: "qa".into(),
                }
                .into(),
                StatusCode::NOT_FOUND,
                "service \"svc\" has no open session \"qa\"",
            ),
        ];
        for (e, status, message) in cases {
            assert_eq!((e.status(), e.to_string().as_str()), (status, message));
        }
    }
}
