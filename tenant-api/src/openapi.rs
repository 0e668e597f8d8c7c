//! The published OpenAPI 3.1 document: info, security schemes and tags. Paths are
//! collected from the handlers by `utoipa_axum::routes!`.

use utoipa::Modify;
use utoipa::OpenApi;
use utoipa::openapi::RefOr;
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
        (name = "reports", description = "Dashboard, finance and analytics of a mall (staff JWT; each route names its permission)"),
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

/// The answers any operation can give, documented once: 400 (unreadable body or query),
/// 422 (a value that does not fit), 401 (on operations with a credential), 415 (a body
/// that is not JSON), 404 and 403 (the `{tenant}` is unknown or suspended, or a path id
/// names nothing). An operation's own description of a status is kept. Applied to the
/// whole document once the routes' paths are in it (`app::api`).
pub struct CommonErrors;

impl Modify for CommonErrors {
    fn modify(&self, api: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
        let error = |description: &str| {
            ResponseBuilder::new()
                .description(description)
                .content(
                    "application/json",
                    ContentBuilder::new().schema(Some(Ref::from_schema_name("ErrorBody"))).build(),
                )
                .build()
        };
        for (path, item) in api.paths.paths.iter_mut() {
            let has_path_params = path.contains('{');
            let tenant_route = path.contains("{tenant}");
            for op in operations_mut(item) {
                let secured = op.security.as_ref().is_some_and(|s| !s.is_empty());
                let with_body = op.request_body.is_some();
                let mut common = vec![
                    ("400", "Malformed: the body is not JSON or the query string cannot be read"),
                    ("422", "Validation failed: `details.fields` names each field"),
                ];
                if secured {
                    common.push(("401", "No valid credential for this route group"));
                }
                if with_body {
                    common.push(("415", "The body is not sent as application/json"));
                }
                if has_path_params {
                    common.push(("404", "Not found: no such mall, or a path id names nothing in this mall"));
                }
                if tenant_route {
                    common.push((
                        "403",
                        "The mall is suspended, or the credential is of another mall or lacks a permission",
                    ));
                }
                for (status, description) in common {
                    op.responses.responses.entry(status.to_string()).or_insert_with(|| error(description).into());
                }
                for p in op.parameters.iter_mut().flatten() {
                    if let RefOr::T(p) = p {
                        bound_parameter(p);
                    }
                }
            }
        }
    }
}

/// The bounds the server checks on parameters every route shares, in the document (so
/// clients and fuzzers know them): `Idempotency-Key` and the page `limit`.
fn bound_parameter(p: &mut utoipa::openapi::path::Parameter) {
    use utoipa::openapi::path::ParameterIn;
    use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
    let schema = match (&p.parameter_in, p.name.as_str()) {
        (ParameterIn::Header, "Idempotency-Key") => ObjectBuilder::new()
            .schema_type(Type::String)
            .min_length(Some(1))
            .max_length(Some(200))
            .pattern(Some("^[!-~]+$"))
            .build(),
        (ParameterIn::Query, "limit") => ObjectBuilder::new()
            .schema_type(Type::Integer)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
            .minimum(Some(1))
            .maximum(Some(platform::limits::PAGE_LIMIT_MAX))
            .build(),
        _ => return,
    };
    p.schema = Some(RefOr::T(schema.into()));
}

use platform::doc::{NO_NUL, NOT_BLANK};

/// How a field says "not blank" in `#[schema(pattern = ...)]`: `\S`, written out as
/// `NOT_BLANK` in the document.
const NOT_BLANK_SHORT: &str = "\\S";

/// The text and JSON rules every request obeys (`input`; README, "Limits"), in the
/// document: each string a request carries (in a body, a query or a path, directly or
/// through the components it names) that has no `pattern`, `format` or `enum` of its own
/// gets `NO_NUL`, and `\S` becomes `NOT_BLANK` (a field's own pattern excludes NUL
/// itself); free JSON (`serde_json::Value`) and the unknown members of an object that
/// does not refuse them are `JsonValue`s. The search text `q` is left as it is: NUL is
/// dropped from it. Response-only schemas are left as they are. Applied once the routes'
/// paths are in the document (`app::api`), after `CommonErrors` (which gives the shared
/// parameters their patterns).
pub struct TextRules;

impl Modify for TextRules {
    fn modify(&self, api: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::path::ParameterIn;
        let mut named = Vec::new();
        for item in api.paths.paths.values_mut() {
            for op in operations_mut(item) {
                for p in op.parameters.iter_mut().flatten() {
                    if let RefOr::T(p) = p
                        && !(matches!(p.parameter_in, ParameterIn::Query) && p.name == "q")
                        && let Some(schema) = &mut p.schema
                    {
                        text_rules(schema, &mut named, true);
                    }
                }
                if let Some(RefOr::T(body)) = &mut op.request_body {
                    for content in body.content.values_mut() {
                        if let RefOr::T(content) = content
                            && let Some(schema) = &mut content.schema
                        {
                            text_rules(schema, &mut named, true);
                        }
                    }
                }
            }
        }
        let components = api.components.get_or_insert_with(Default::default);
        let mut done = std::collections::BTreeSet::new();
        while let Some(name) = named.pop() {
            if !done.insert(name.clone()) {
                continue;
            }
            if name == JSON_VALUE {
                use utoipa::PartialSchema;
                components.schemas.entry(name).or_insert_with(platform::doc::JsonValue::schema);
            } else if let Some(schema) = components.schemas.get_mut(&name) {
                text_rules(schema, &mut named, true);
            }
        }
        // Responses say "not blank" the same way.
        for (name, schema) in components.schemas.iter_mut() {
            if !done.contains(name) {
                text_rules(schema, &mut Vec::new(), false);
            }
        }
    }
}

const JSON_VALUE: &str = "JsonValue";

/// Applies the text rules to `schema` and what it contains (`request`: all of them, else
/// only `\S` spelled out); the components it names are pushed to `named`.
fn text_rules(schema: &mut RefOr<utoipa::openapi::schema::Schema>, named: &mut Vec<String>, request: bool) {
    use utoipa::openapi::Ref;
    use utoipa::openapi::schema::{AdditionalProperties, ArrayItems, ObjectBuilder, Schema, SchemaType, Type};
    let is = |o: &utoipa::openapi::schema::Object, t: Type| match &o.schema_type {
        SchemaType::Type(own) => *own == t,
        SchemaType::Array(types) => types.contains(&t),
        SchemaType::AnyValue => false,
    };
    match schema {
        RefOr::Ref(r) => {
            if let Some(name) = r.ref_location.strip_prefix("#/components/schemas/") {
                named.push(name.to_string());
            }
        }
        RefOr::T(Schema::Object(o))
            if request && matches!(o.schema_type, SchemaType::AnyValue) && o.properties.is_empty() =>
        {
            named.push(JSON_VALUE.to_string());
            *schema = Ref::from_schema_name(JSON_VALUE).into();
        }
        RefOr::T(Schema::Object(o)) => {
            if is(o, Type::String) {
                match o.pattern.as_deref() {
                    Some(NOT_BLANK_SHORT) => o.pattern = Some(NOT_BLANK.to_string()),
                    None if request && o.format.is_none() && o.enum_values.is_none() => {
                        o.pattern = Some(NO_NUL.to_string())
                    }
                    _ => {}
                }
            }
            if request && is(o, Type::Object) && o.additional_properties.is_none() {
                named.push(JSON_VALUE.to_string());
                o.additional_properties = Some(Box::new(Ref::from_schema_name(JSON_VALUE).into()));
                o.property_names =
                    Some(Box::new(ObjectBuilder::new().schema_type(Type::String).pattern(Some(NO_NUL)).into()));
            }
            for property in o.properties.values_mut() {
                text_rules(property, named, request);
            }
            if let Some(extra) = o.additional_properties.as_deref_mut()
                && let AdditionalProperties::RefOr(extra) = extra
            {
                text_rules(extra, named, request);
            }
        }
        RefOr::T(Schema::Array(a)) => {
            if let ArrayItems::RefOrSchema(items) = &mut a.items {
                text_rules(items, named, request);
            }
        }
        RefOr::T(Schema::AllOf(x)) => x.items.iter_mut().for_each(|s| text_rules(s, named, request)),
        RefOr::T(Schema::AnyOf(x)) => x.items.iter_mut().for_each(|s| text_rules(s, named, request)),
        RefOr::T(Schema::OneOf(x)) => x.items.iter_mut().for_each(|s| text_rules(s, named, request)),
        RefOr::T(_) => {}
    }
}

/// Every operation gets a unique `operationId` (generated clients and /docs "Try it out"
/// address operations by it; utoipa names them after the handler, and `login`, `logout`,
/// `refresh`, `me`, … exist once per audience). An id used by more than one operation is
/// prefixed with the audience its path belongs to: `platform_`, `alliance_`, `staff_`,
/// `partner_` or `member_`.
pub struct UniqueOperationIds;

impl Modify for UniqueOperationIds {
    fn modify(&self, api: &mut utoipa::openapi::OpenApi) {
        let mut seen: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
        for item in api.paths.paths.values() {
            for op in operations(item) {
                if let Some(id) = &op.operation_id {
                    *seen.entry(id.clone()).or_default() += 1;
                }
            }
        }
        for (path, item) in api.paths.paths.iter_mut() {
            let audience = audience_of(path);
            for op in operations_mut(item) {
                if let Some(id) = &op.operation_id
                    && seen.get(id).copied().unwrap_or(0) > 1
                {
                    op.operation_id = Some(format!("{audience}_{id}"));
                }
            }
        }
    }
}

/// The route group a path belongs to (README, "Route groups").
fn audience_of(path: &str) -> &'static str {
    if path.starts_with("/v1/platform/") {
        "platform"
    } else if path.starts_with("/v1/alliances/") {
        "alliance"
    } else if path.contains("/staff/") || path.ends_with("/staff") {
        "staff"
    } else if path.contains("/partner/") {
        "partner"
    } else {
        "member"
    }
}

fn operations(item: &utoipa::openapi::PathItem) -> impl Iterator<Item = &utoipa::openapi::path::Operation> {
    [&item.get, &item.put, &item.post, &item.delete, &item.patch, &item.head, &item.options].into_iter().flatten()
}

fn operations_mut(item: &mut utoipa::openapi::PathItem) -> impl Iterator<Item = &mut utoipa::openapi::path::Operation> {
    [&mut item.get, &mut item.put, &mut item.post, &mut item.delete, &mut item.patch, &mut item.head, &mut item.options]
        .into_iter()
        .flatten()
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_operation_has_its_own_id() {
        let (_, doc) = crate::app::api();
        let mut ids = std::collections::BTreeMap::new();
        for (path, item) in &doc.paths.paths {
            for op in super::operations(item) {
                let id = op.operation_id.clone().unwrap_or_else(|| panic!("{path}: no operationId"));
                if let Some(other) = ids.insert(id.clone(), path.clone()) {
                    panic!("operationId {id} is used by {other} and {path}");
                }
            }
        }
        let login = |path: &str| doc.paths.paths[path].post.as_ref().unwrap().operation_id.clone().unwrap();
        assert_eq!(login("/v1/tenants/{tenant}/staff/auth/login"), "staff_login");
        assert_eq!(login("/v1/tenants/{tenant}/auth/login"), "member_login");
        assert_eq!(login("/v1/platform/auth/login"), "platform_login");
        assert!(ids.len() > 100, "{} operations", ids.len());
    }

    /// The writes that take an `Idempotency-Key` name it as one required header, from
    /// one definition (`idempotent::IdempotencyKey`).
    #[test]
    fn idempotent_writes_document_their_key() {
        use utoipa::openapi::path::ParameterIn;
        let (_, doc) = crate::app::api();
        let mut with_key = Vec::new();
        for (path, item) in &doc.paths.paths {
            for op in super::operations(item) {
                let key = op.parameters.iter().flatten().find_map(|p| match p {
                    utoipa::openapi::RefOr::T(p) if p.name == "Idempotency-Key" => Some(p),
                    _ => None,
                });
                if let Some(k) = key {
                    assert!(matches!(k.parameter_in, ParameterIn::Header), "{path}: not a header");
                    assert!(matches!(k.required, utoipa::openapi::Required::True), "{path}: not required");
                    with_key.push(path.clone());
                }
            }
        }
        for expected in [
            "/v1/tenants/{tenant}/partner/points/credits",
            "/v1/tenants/{tenant}/partner/holds/{id}/void",
            "/v1/tenants/{tenant}/me/redemptions",
            "/v1/tenants/{tenant}/me/lotteries/{id}/draws",
            "/v1/tenants/{tenant}/staff/members/{id}/points/adjustments",
        ] {
            assert!(with_key.iter().any(|p| p == expected), "{expected} does not document its Idempotency-Key");
        }
        assert_eq!(with_key.len(), 12, "{with_key:?}");
    }

    /// Every `$ref` of the document names a component it has.
    #[test]
    fn every_reference_resolves() {
        fn refs(v: &serde_json::Value, out: &mut Vec<String>) {
            match v {
                serde_json::Value::Object(m) => {
                    if let Some(serde_json::Value::String(r)) = m.get("$ref") {
                        out.push(r.clone());
                    }
                    m.values().for_each(|v| refs(v, out));
                }
                serde_json::Value::Array(a) => a.iter().for_each(|v| refs(v, out)),
                _ => {}
            }
        }
        let doc = serde_json::to_value(crate::app::api().1).unwrap();
        let mut found = Vec::new();
        refs(&doc, &mut found);
        assert!(found.len() > 100, "{}", found.len());
        for r in found {
            let name = r.strip_prefix("#/components/schemas/").unwrap_or_else(|| panic!("{r}"));
            assert!(doc["components"]["schemas"].get(name).is_some(), "{r} names no component");
        }
    }

    /// utoipa's `minimum`, `maxItems`, … take literals only: where the server's bound is a
    /// constant, the document's number is checked against it here.
    #[test]
    fn bounds_written_as_literals_are_the_limits() {
        use platform::limits::{self, ledger, mall, rules};
        let doc = serde_json::to_value(crate::app::api().1).unwrap();
        let schemas = &doc["components"]["schemas"];
        let at = |schema: &str, pointer: &str| {
            schemas[schema]
                .pointer(pointer)
                .and_then(serde_json::Value::as_i64)
                .unwrap_or_else(|| panic!("{schema}{pointer}"))
        };
        let cases = [
            (at("RedeemRequest", "/properties/quantity/maximum"), i64::from(mall::QUANTITY_MAX)),
            (at("NewLottery", "/properties/prizes/maxItems"), mall::PRIZES_MAX as i64),
            (at("Prize", "/properties/weight/maximum"), i64::from(mall::WEIGHT_TOTAL)),
            (at("ProductInput", "/properties/images/maxItems"), mall::IMAGES_PER_PRODUCT_MAX as i64),
            (at("CreditBatch", "/properties/items/maxItems"), ledger::BATCH_MAX as i64),
            (at("EventBatch", "/properties/events/maxItems"), rules::BATCH_EVENTS_MAX as i64),
            (at("NewApiKey", "/properties/scopes/maxItems"), limits::API_KEY_SCOPES_MAX as i64),
            (at("TenantLimits", "/properties/event_batches/maximum"), i64::from(limits::TENANT_CONCURRENCY_MAX)),
            (at("TenantLimits", "/properties/rule_evaluations/maximum"), i64::from(limits::TENANT_CONCURRENCY_MAX)),
            (at("Password", "/minLength"), limits::PASSWORD_MIN_CHARS as i64),
            (at("Password", "/maxLength"), limits::PASSWORD_MAX_CHARS as i64),
            (at("Amount", "/maximum"), ledger::AMOUNT_MAX),
        ];
        for (i, (documented, limit)) in cases.into_iter().enumerate() {
            assert_eq!(documented, limit, "case {i}");
        }
        let q = doc["paths"]["/v1/tenants/{tenant}/products"]["get"]["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == "q")
            .unwrap();
        assert_eq!(q["schema"]["maxLength"], mall::QUERY_MAX_CHARS);
        assert_eq!(q["schema"].get("pattern"), None, "NUL is dropped from the search text, not refused");
    }

    /// `NOT_BLANK` is what the server's `!s.trim().is_empty()` and "no NUL" accept, and
    /// no field keeps the short `\S` in the document.
    #[test]
    fn not_blank_is_trim_and_no_nul() {
        let re = regex::Regex::new(super::NOT_BLANK).unwrap();
        for c in (0..=0x3100u32).chain([0xfeff, 0x1_0000]).filter_map(char::from_u32) {
            for s in [c.to_string(), format!(" {c} "), format!("{c}\u{0}")] {
                assert_eq!(re.is_match(&s), !s.trim().is_empty() && !s.contains('\0'), "{s:?}");
            }
        }
        let doc = serde_json::to_string(&crate::app::api().1).unwrap();
        assert!(!doc.contains(r#""pattern":"\\S""#), "a \\S pattern was left in the document");
    }
}
