//! Pieces of the OpenAPI document that `#[derive(utoipa::ToSchema)]` cannot write: text
//! and free JSON as the HTTP edge takes them (`tenant_api::input`, README "Limits"), and
//! bodies that need one field of several. The shapes of single values (phone numbers,
//! URLs, currency codes, amounts) live beside the code that checks them.

use utoipa::openapi::schema::{
    AllOfBuilder, AnyOfBuilder, ArrayBuilder, KnownFormat, ObjectBuilder, OneOfBuilder, Schema, SchemaFormat,
    SchemaType, Type,
};
use utoipa::openapi::{Ref, RefOr};

use crate::limits::JSON_NUMBER_ABS_MAX;

/// A text the server stores: no NUL character (U+0000) anywhere.
pub const NO_NUL: &str = "^[^\\x00]*$";

/// A text that is not blank: at least one character `str::trim` keeps (neither NUL nor
/// Unicode White_Space, spelled out: a regex engine's `\s` is ASCII-only in some readers
/// and includes U+FEFF in others), and no NUL anywhere. Fields write it `\S`
/// (`#[schema(pattern = "\\S")]`); the document's text rules write it out.
pub const NOT_BLANK: &str =
    "^[^\\x00]*[^\\x00\\t-\\r \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000][^\\x00]*$";

/// Any JSON value the HTTP edge takes: text and keys without NUL, integers within i64,
/// other numbers within ±`JSON_NUMBER_ABS_MAX`. JSON Schema counts `3e15` an integer, the
/// edge a float (refused beyond the bound): the one spelling the document cannot tell
/// apart.
pub struct JsonValue;

impl utoipa::PartialSchema for JsonValue {
    fn schema() -> RefOr<Schema> {
        let me = || Ref::from_schema_name("JsonValue");
        AnyOfBuilder::new()
            .item(ObjectBuilder::new().schema_type(Type::Null))
            .item(ObjectBuilder::new().schema_type(Type::Boolean))
            .item(integer())
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::Number)
                    .minimum(Some(-JSON_NUMBER_ABS_MAX))
                    .maximum(Some(JSON_NUMBER_ABS_MAX)),
            )
            .item(ObjectBuilder::new().schema_type(Type::String).pattern(Some(NO_NUL)))
            .item(ArrayBuilder::new().items(me()))
            .item(json_object(me()))
            .description(Some(
                "Any JSON value: text and keys without NUL, integers within i64, other numbers within ±10^15",
            ))
            .into()
    }
}
impl utoipa::ToSchema for JsonValue {}

fn json_object(values: Ref) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::Object)
        .additional_properties(Some(values))
        .property_names(Some(ObjectBuilder::new().schema_type(Type::String).pattern(Some(NO_NUL))))
}

/// A JSON object of `JsonValue`s (rule parameters, event data, benefits).
pub struct JsonObject;

impl utoipa::PartialSchema for JsonObject {
    fn schema() -> RefOr<Schema> {
        json_object(Ref::from_schema_name("JsonValue")).description(Some("A JSON object")).into()
    }
}
impl utoipa::ToSchema for JsonObject {
    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        use utoipa::PartialSchema;
        schemas.push(("JsonValue".into(), JsonValue::schema()));
    }
}

/// "`name` is present, as `schema` says" (a part of an `allOf`, `anyOf` or `oneOf`, so
/// without a type of its own).
pub fn present(name: &str, schema: RefOr<Schema>) -> ObjectBuilder {
    ObjectBuilder::new().schema_type(SchemaType::AnyValue).required(name).property(name, schema)
}

/// An integer in the document (a schema for `requiring`).
pub fn integer() -> RefOr<Schema> {
    ObjectBuilder::new().schema_type(Type::Integer).format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64))).into()
}

/// A text in the document (a schema for `requiring`).
pub fn text() -> RefOr<Schema> {
    ObjectBuilder::new().schema_type(Type::String).into()
}

/// The component `base` that also needs at least one (`exactly_one`: exactly one) of
/// `fields` present, each as its schema says (not null).
pub fn requiring(
    base: &str,
    fields: impl IntoIterator<Item = (&'static str, RefOr<Schema>)>,
    exactly_one: bool,
    description: &str,
) -> RefOr<Schema> {
    let branches: Vec<ObjectBuilder> = fields.into_iter().map(|(name, schema)| present(name, schema)).collect();
    let choice: Schema = if exactly_one {
        branches.into_iter().fold(OneOfBuilder::new(), |b, o| b.item(o)).into()
    } else {
        branches.into_iter().fold(AnyOfBuilder::new(), |b, o| b.item(o)).into()
    };
    AllOfBuilder::new().item(Ref::from_schema_name(base)).item(choice).description(Some(description)).into()
}
