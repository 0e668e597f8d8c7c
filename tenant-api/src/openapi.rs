//! The published OpenAPI 3.1 document: info, security schemes and tags. Paths are
//! collected from the handlers by `utoipa_axum::routes!`.

use utoipa::Modify;
use utoipa::OpenApi;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Points mall (积分商城) API",
        description = "Multi-tenant points mall. Tenants are addressed by the `{tenant}` path segment \
            (`/v1/tenants/{tenant}/...`). Members, merchant staff, alliance admins and the platform \
            operator use JWT bearer tokens of their own audience; partner servers use `X-Api-Key`. \
            Errors are `{\"error\": {\"code\", \"message\", \"details\"}}`."
    ),
    modifiers(&Security),
    tags(
        (name = "members", description = "Member sign-up, login and profile (member JWT)"),
        (name = "staff", description = "Merchant back office (staff JWT; each route names its permission)"),
        (name = "mall", description = "Catalog, redemption and orders (browse needs no credential; the rest names its credential)"),
        (name = "rules", description = "Earn rules as Rhai scripts (staff JWT; each route names its permission)"),
        (name = "partner", description = "Server-to-server (API key; each route names its scope)"),
        (name = "alliance", description = "Alliance admins (alliance JWT)"),
        (name = "platform", description = "Platform operator (platform JWT)"),
        (name = "operations", description = "Health and metrics"),
    )
)]
pub struct ApiDoc;

struct Security;

impl Modify for Security {
    fn modify(&self, api: &mut utoipa::openapi::OpenApi) {
        let components = api.components.get_or_insert_with(Default::default);
        let jwt = |desc: &str| {
            SecurityScheme::Http(
                HttpBuilder::new().scheme(HttpAuthScheme::Bearer).bearer_format("JWT").description(Some(desc)).build(),
            )
        };
        components.add_security_scheme("member_jwt", jwt("Member access token (audience pointsmall:member)"));
        components.add_security_scheme("staff_jwt", jwt("Merchant staff access token (audience pointsmall:staff)"));
        components
            .add_security_scheme("alliance_jwt", jwt("Alliance admin access token (audience pointsmall:alliance)"));
        components
            .add_security_scheme("platform_jwt", jwt("Platform operator access token (audience pointsmall:platform)"));
        components.add_security_scheme(
            "api_key",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "X-Api-Key",
                "Partner API key of the addressed tenant",
            ))),
        );
    }
}
