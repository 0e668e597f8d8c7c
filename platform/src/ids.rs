//! Typed ids (issue 11): an id of one kind cannot be passed where another is meant. Each
//! is an `i64` on the wire and in PostgreSQL (`bigint`), and nothing else: `new` wraps
//! one read from outside, `get` hands it to code that still takes plain ids.
//!
//! Where ids of two kinds meet, the types keep them apart: a merchant's member
//! (`MemberId`, a row of the mall's `members`) and the alliance identity behind it
//! (`IdentityId`, a row of the alliance schema's `members`, linked from each mall's
//! `members.alliance_member_id`). `alliance::identity` and `alliance::book` speak these
//! types, and the mall speaks `ProductId` and `OrderId`, rules `RuleId`, holds `HoldId`, staff accounts `StaffId`; other code still passes plain
//! `i64` ids (issue 11 continues there).

macro_rules! id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash,
            serde::Serialize, serde::Deserialize, sqlx::Type, utoipa::ToSchema,
        )]
        #[serde(transparent)]
        #[sqlx(transparent)]
        pub struct $name(i64);

        impl $name {
            pub const fn new(id: i64) -> Self {
                Self(id)
            }

            pub const fn get(self) -> i64 {
                self.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

id!(
    /// A member of one merchant's mall.
    MemberId
);
id!(
    /// An alliance identity: one person across the alliance's malls.
    IdentityId
);
id!(
    /// A product of one merchant's mall.
    ProductId
);
id!(
    /// An order of one merchant's mall.
    OrderId
);
id!(
    /// An earn rule of one merchant's mall.
    RuleId
);
id!(
    /// A points hold of a partner's checkout.
    HoldId
);
id!(
    /// A staff account in the control schema: a merchant's staff, an alliance admin or
    /// the platform operator.
    StaffId
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_plain_numbers_outside() {
        let m = MemberId::new(42);
        assert_eq!(serde_json::to_string(&m).unwrap(), "42");
        assert_eq!(serde_json::from_str::<IdentityId>("7").unwrap(), IdentityId::new(7));
        assert_eq!(m.to_string(), "42");
        assert_eq!(m.get(), 42);
    }
}
