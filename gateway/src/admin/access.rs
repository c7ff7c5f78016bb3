//! Who may call what: the `Authorization: Bearer` token identified once per request, as axum
//! extractors. [`Operator`] for operator-only calls; [`ForTenant`] and [`ForFunction`] for
//! calls about the tenant (and function) the path names, by the operator or that tenant's own
//! token. A handler that takes one never runs for a caller it refuses.

use std::collections::BTreeMap;

use axum::extract::{FromRequestParts, Path};
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};

use crate::auth::{Access, Caller};

use super::{AdminError, AdminState};

/// Who is calling, from the `Authorization: Bearer` header.
async fn authenticate(state: &AdminState, headers: &HeaderMap) -> Result<Caller, AdminError> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or(AdminError::Unauthenticated)?;
    state
        .control
        .identify(token, &state.operator)
        .await
        .ok_or(AdminError::Unauthenticated)
}

/// An operator-only call: the request carries the operator's token (401 without a known
/// token, 403 with a tenant's).
pub struct Operator;

impl FromRequestParts<AdminState> for Operator {
    type Rejection = AdminError;

    async fn from_request_parts(parts: &mut Parts, state: &AdminState) -> Result<Self, AdminError> {
        match authenticate(state, &parts.headers).await? {
            Caller::Operator => Ok(Operator),
            Caller::Tenant(_) => Err(AdminError::Forbidden(
                "this call needs the operator token".to_owned(),
            )),
        }
    }
}

/// A call about the tenant the path names (`/v1/tenants/{tenant}/...`), by the operator or
/// that tenant's own token (401 without a known token, 403 with another tenant's).
pub struct ForTenant {
    /// Who is calling.
    pub caller: Caller,
    /// The tenant the path names.
    pub tenant: String,
}

/// A path parameter of the route.
async fn path_param(
    parts: &mut Parts,
    state: &AdminState,
    name: &str,
) -> Result<String, AdminError> {
    let Path(mut params) = Path::<BTreeMap<String, String>>::from_request_parts(parts, state)
        .await
        .map_err(|e| AdminError::BadRequest(e.body_text()))?;
    params
        .remove(name)
        .ok_or_else(|| AdminError::BadRequest(format!("no {name} in the path")))
}

impl FromRequestParts<AdminState> for ForTenant {
    type Rejection = AdminError;

    async fn from_request_parts(parts: &mut Parts, state: &AdminState) -> Result<Self, AdminError> {
        let tenant = path_param(parts, state, "tenant").await?;
        let caller = authenticate(state, &parts.headers).await?;
        match caller.access(&tenant) {
            Access::Allowed => Ok(ForTenant { caller, tenant }),
            Access::Forbidden => Err(AdminError::Forbidden(
                "this token belongs to another tenant".to_owned(),
            )),
        }
    }
}

/// A call about the function the path names (`/v1/tenants/{tenant}/functions/{function}/...`),
/// by the operator or the tenant's own token.
pub struct ForFunction {
    /// The tenant the path names.
    pub tenant: String,
    /// The function the path names.
    pub function: String,
}

impl FromRequestParts<AdminState> for ForFunction {
    type Rejection = AdminError;

    async fn from_request_parts(parts: &mut Parts, state: &AdminState) -> Result<Self, AdminError> {
        let ForTenant { tenant, .. } = ForTenant::from_request_parts(parts, state).await?;
        let function = path_param(parts, state, "function").await?;
        Ok(ForFunction { tenant, function })
    }
}
