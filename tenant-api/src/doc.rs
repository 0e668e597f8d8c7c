//! Pieces of `#[utoipa::path]` attributes that many routes share: the slug parameters
//! every tenant or alliance route starts with, and the error answers a route lists next
//! to its own success answer, e.g.
//! `params(TenantSlug), responses((status = 200, body = Product), Forbidden, NotFound)`.
//!
//! A handler whose arguments take the slug through `Path<…>` keeps the tuple form
//! (`("tenant" = String, Path, description = "tenant slug")`): utoipa reads path
//! parameters off a `Path` argument and pairs them with the tuples by name, but would list
//! a `TenantSlug` as a second `tenant`. `PathId` and the credential extractors are not
//! read that way.
//!
//! The error types only describe the document (each is an `ErrorBody`); handlers answer
//! with `ApiError`. They carry no doc comment on purpose: utoipa would make it the
//! response's description, and `openapi::CommonErrors` leaves a listed answer's own
//! (empty) description as it is.

use utoipa::{IntoParams, IntoResponses};

use crate::error::ErrorBody;

/// The `{tenant}` path segment.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
pub struct TenantSlug {
    /// tenant slug
    pub tenant: String,
}

/// The `{alliance}` path segment.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
pub struct AllianceSlug {
    /// alliance slug
    pub alliance: String,
}

#[derive(IntoResponses)]
#[response(status = 400)]
pub struct BadRequest(pub ErrorBody);

#[derive(IntoResponses)]
#[response(status = 401)]
pub struct Unauthorized(pub ErrorBody);

#[derive(IntoResponses)]
#[response(status = 403)]
pub struct Forbidden(pub ErrorBody);

#[derive(IntoResponses)]
#[response(status = 404)]
pub struct NotFound(pub ErrorBody);

#[derive(IntoResponses)]
#[response(status = 409)]
pub struct Conflict(pub ErrorBody);

#[derive(IntoResponses)]
#[response(status = 413)]
pub struct TooLarge(pub ErrorBody);

#[derive(IntoResponses)]
#[response(status = 422)]
pub struct Invalid(pub ErrorBody);

#[derive(IntoResponses)]
#[response(status = 429)]
pub struct TooMany(pub ErrorBody);

#[derive(IntoResponses)]
#[response(status = 503)]
pub struct Unavailable(pub ErrorBody);
