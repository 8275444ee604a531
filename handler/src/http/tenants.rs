//! `/tenants` (the operator's key only): tenants with their grants, their API tokens and portal links. The
//! views of this resource are here too: each is made from a model type by one function.

use super::answer::{Answer, NoContent, Tagged};
use super::auth::Caller;
use super::extract::{Id, IfMatch, JsonBody, MergePatch, Path, Query};
use super::problem::ApiError;
use super::{errors, AppState};
use crate::service::{timestamp, IssuedCredential};
use aide::axum::routing::{delete_with, get_with, post_with};
use aide::axum::ApiRouter;
use axum::extract::State;
use axum::http::{header, HeaderMap};
use dispatcher_core::model::{Tenant, TenantConfig, Token};
use dispatcher_core::tenants::registration::{lifetime_pattern, PORTAL_LINK_LIFETIME, TOKEN_LIFETIME};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

type Answered<const N: u16, T> = Result<Answer<N, T>, ApiError>;

pub fn routes() -> ApiRouter<AppState> {
    ApiRouter::new()
        .api_route(
            "/api/v1/tenants",
            get_with(list, |op| errors(op.id("listTenants").summary("All tenants (operator only)"), &[403])).post_with(
                create,
                |op| {
                    errors(
                        op.id("createTenant").summary("Create a tenant with its grants (operator only)"),
                        &[400, 403, 409, 415],
                    )
                },
            ),
        )
        .api_route(
            "/api/v1/tenants/{id}",
            get_with(get, |op| errors(op.id("getTenant").summary("One tenant"), &[403, 404]))
                .put_with(replace, |op| {
                    errors(
                        op.id("replaceTenant").summary("Replace a tenant's configuration"),
                        &[400, 403, 404, 409, 412, 415],
                    )
                })
                .patch_with(patch, |op| {
                    errors(
                        op.id("patchTenant").summary("Change some fields (JSON merge patch)"),
                        &[400, 403, 404, 409, 412, 415],
                    )
                })
                .delete_with(delete, |op| {
                    errors(
                        op.id("deleteTenant")
                            .summary("Delete a tenant and its tokens; with ?cascade=true its webhooks too"),
                        &[403, 404, 409],
                    )
                }),
        )
        .api_route(
            "/api/v1/tenants/{id}/tokens",
            get_with(tokens, |op| {
                errors(
                    op.id("listTenantTokens").summary("A tenant's tokens and portal links, without secrets"),
                    &[403, 404],
                )
            })
            .post_with(create_token, |op| {
                errors(
                    op.id("createTenantToken").summary("Issue an API token; the answer holds it, once"),
                    &[400, 403, 404, 415],
                )
            }),
        )
        .api_route(
            "/api/v1/tenants/{id}/tokens/{tokenId}",
            delete_with(revoke, |op| errors(op.id("revokeTenantToken").summary("Revoke a token"), &[403, 404])),
        )
        .api_route(
            "/api/v1/tenants/{id}/portal-links",
            post_with(portal_link, |op| {
                errors(
                    op.id("createPortalLink").summary("A short-lived link that opens the portal as the tenant"),
                    &[400, 403, 404, 415],
                )
            }),
        )
}

/// A tenant as the API shows it.
#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TenantView {
    pub id: String,
    pub name: String,
    /// Per routing attribute, the values its webhooks may hold (`name` is free).
    pub grants: BTreeMap<String, Vec<String>>,
    pub max_webhooks: u32,
    pub disabled: bool,
    pub created_at: String,
    pub updated_at: String,
}

impl TenantView {
    fn of(tenant: &Tenant) -> TenantView {
        let c = &tenant.config;
        TenantView {
            id: tenant.id.to_string(),
            name: c.name.clone(),
            grants: c.grants.clone(),
            max_webhooks: c.max_webhooks,
            disabled: c.disabled,
            created_at: timestamp(tenant.created_at_ms),
            updated_at: timestamp(tenant.updated_at_ms),
        }
    }
}

/// A token or portal link, never its secret.
#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TokenView {
    pub id: String,
    pub name: String,
    /// `token` (an API token) or `portal-link`.
    pub kind: &'static str,
    pub read_only: bool,
    pub created_at: String,
    pub expires_at: String,
    /// Only in the answer to its creation: `Authorization: Bearer <token>`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
}

impl TokenView {
    fn of(token: &Token, secret: Option<String>) -> TokenView {
        TokenView {
            id: token.id.clone(),
            name: token.name.clone(),
            kind: if token.portal { "portal-link" } else { "token" },
            read_only: token.read_only,
            created_at: timestamp(token.created_at_ms),
            expires_at: timestamp(token.expires_at_ms),
            token: secret,
        }
    }
}

/// A portal link: the portal opened with a short-lived token of the tenant's.
#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PortalLinkView {
    /// The token's id, to revoke the link before it expires.
    pub id: String,
    pub url: String,
    pub read_only: bool,
    pub expires_at: String,
}

/// The JSON Schema of `POST /tenants`: a tenant that may also name its id.
#[derive(JsonSchema)]
#[allow(dead_code)]
#[serde(rename_all = "camelCase")]
#[schemars(title = "Tenant registration", extend("additionalProperties" = false))]
struct TenantRegistration {
    /// 1 to 64 letters, digits, `_` or `-`; generated (`tn_…`) when absent.
    #[schemars(regex(pattern = r"^[A-Za-z0-9_-]{1,64}$"))]
    id: Option<String>,
    #[schemars(length(min = 1, max = 200))]
    name: String,
    #[schemars(extend("additionalProperties" = {"type": "array", "items": {"type": "string", "minLength": 1}}))]
    grants: Option<BTreeMap<String, Vec<String>>>,
    #[schemars(range(max = 10000))]
    max_webhooks: Option<u32>,
    disabled: Option<bool>,
}

/// `POST /tenants/{id}/tokens`.
#[derive(JsonSchema)]
#[allow(dead_code)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("additionalProperties" = false))]
struct TokenRequest {
    /// What the token is for.
    #[schemars(length(min = 1, max = 200))]
    name: String,
    /// How long it lives: a whole number of s, m, h or d, e.g. `90d` (the default), at most 366 days.
    #[schemars(extend("examples" = ["90d"], "pattern" = lifetime_pattern(TOKEN_LIFETIME.1)))]
    expires_in: Option<String>,
    /// A read-only token may only read (default false).
    read_only: Option<bool>,
}

/// `POST /tenants/{id}/portal-links`.
#[derive(JsonSchema)]
#[allow(dead_code)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("additionalProperties" = false))]
struct PortalLinkRequest {
    /// How long the link works: a whole number of s, m, h or d, e.g. `1h` (the default), at most 7 days.
    #[schemars(extend("examples" = ["1h"], "pattern" = lifetime_pattern(PORTAL_LINK_LIFETIME.1)))]
    expires_in: Option<String>,
    /// A read-only link shows nothing that changes anything (default true).
    read_only: Option<bool>,
}

/// The JSON Schema of a tenant's configuration (`PUT /tenants/{id}`): its optional fields may be null.
pub struct TenantConfigSchema;

impl JsonSchema for TenantConfigSchema {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "TenantConfiguration".into()
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let mut schema = serde_json::to_value(TenantConfig::json_schema(generator)).unwrap_or_default();
        dispatcher_core::webhooks::registration::nullable_optionals(&mut schema);
        schemars::Schema::try_from(schema).unwrap_or_default()
    }
}

#[derive(Deserialize, JsonSchema)]
pub struct DeleteQuery {
    /// Delete the tenant's webhooks too (otherwise a tenant that owns webhooks is not deleted: 409).
    pub cascade: Option<bool>,
}

#[derive(Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TokenPath {
    /// The tenant's id.
    pub id: String,
    /// The token's id (`tok_…`).
    pub token_id: String,
}

async fn list(State(service): State<AppState>, Caller(access): Caller) -> Answered<200, Vec<TenantView>> {
    Ok(Answer(service.list_tenants(&access).await?.iter().map(TenantView::of).collect()))
}

async fn create(
    State(service): State<AppState>,
    Caller(access): Caller,
    JsonBody(body, _): JsonBody<TenantRegistration>,
) -> Answered<201, TenantView> {
    Ok(Answer(TenantView::of(&service.create_tenant(&access, &body).await?.0)))
}

async fn get(
    State(service): State<AppState>,
    Caller(access): Caller,
    Id(id): Id,
) -> Result<Tagged<TenantView>, ApiError> {
    let (tenant, version) = service.tenant(&access, &id.into()).await?;
    Ok(Tagged(TenantView::of(&tenant), version))
}

async fn replace(
    State(service): State<AppState>,
    Caller(access): Caller,
    Id(id): Id,
    IfMatch(if_match): IfMatch,
    JsonBody(body, _): JsonBody<TenantConfigSchema>,
) -> Result<Tagged<TenantView>, ApiError> {
    let (tenant, version) = service.replace_tenant(&access, &id.into(), &body, if_match.as_deref()).await?;
    Ok(Tagged(TenantView::of(&tenant), version))
}

async fn patch(
    State(service): State<AppState>,
    Caller(access): Caller,
    Id(id): Id,
    IfMatch(if_match): IfMatch,
    JsonBody(patch, _): JsonBody<MergePatch<TenantConfigSchema>>,
) -> Result<Tagged<TenantView>, ApiError> {
    let (tenant, version) = service.patch_tenant(&access, &id.into(), &patch, if_match.as_deref()).await?;
    Ok(Tagged(TenantView::of(&tenant), version))
}

async fn delete(
    State(service): State<AppState>,
    Caller(access): Caller,
    Id(id): Id,
    Query(query): Query<DeleteQuery>,
) -> Result<NoContent, ApiError> {
    service.delete_tenant(&access, &id.into(), query.cascade.unwrap_or(false)).await?;
    Ok(NoContent)
}

async fn tokens(State(service): State<AppState>, Caller(access): Caller, Id(id): Id) -> Answered<200, Vec<TokenView>> {
    Ok(Answer(service.tokens(&access, &id.into()).await?.iter().map(|t| TokenView::of(t, None)).collect()))
}

async fn create_token(
    State(service): State<AppState>,
    Caller(access): Caller,
    Id(id): Id,
    JsonBody(body, _): JsonBody<TokenRequest>,
) -> Answered<201, TokenView> {
    let IssuedCredential { record, token } = service.create_token(&access, &id.into(), &body).await?;
    Ok(Answer(TokenView::of(&record, Some(token))))
}

async fn revoke(
    State(service): State<AppState>,
    Caller(access): Caller,
    Path(path): Path<TokenPath>,
) -> Result<NoContent, ApiError> {
    service.revoke_token(&access, &path.id.into(), &path.token_id).await?;
    Ok(NoContent)
}

async fn portal_link(
    State(service): State<AppState>,
    Caller(access): Caller,
    headers: HeaderMap,
    Id(id): Id,
    JsonBody(body, _): JsonBody<PortalLinkRequest>,
) -> Answered<201, PortalLinkView> {
    let IssuedCredential { record, token } = service.create_portal_link(&access, &id.into(), &body).await?;
    // The portal is beside the API: the link uses the address the operator reached the API at.
    let header = |name| headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let scheme = header("x-forwarded-proto").unwrap_or_else(|| "http".to_owned());
    let host =
        header("x-forwarded-host").or_else(|| header(header::HOST.as_str())).unwrap_or_else(|| "localhost".to_owned());
    Ok(Answer(PortalLinkView {
        id: record.id.clone(),
        url: format!("{scheme}://{host}/portal/#token={token}"),
        read_only: record.read_only,
        expires_at: timestamp(record.expires_at_ms),
    }))
}
