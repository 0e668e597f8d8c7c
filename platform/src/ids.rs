//! Typed ids (issue 11): an id of one kind cannot be passed where another is meant. Each
//! is an `i64` on the wire and in PostgreSQL (`bigint`), and nothing else: `new` wraps
//! one read from outside, `get` hands it to code that still takes plain ids.
//!
//! Where ids of two kinds meet, the types keep them apart: a merchant (`TenantId`) and
//! an alliance (`AllianceId`) in the directory, audit and tokens; a merchant's member
//! (`MemberId`, a row of the mall's `members`) and the alliance identity behind it
//! (`IdentityId`, a row of the alliance schema's `members`, linked from each mall's
//! `members.alliance_member_id`); a ledger's entries (`EntryId`) and lots (`LotId`). The
//! mall speaks `ProductId` and `OrderId`, rules `RuleId`, holds `HoldId`, staff accounts
//! `StaffId`. The ledger's own member column stays a plain `i64`: one ledger code serves
//! a mall (members) and an alliance (identities), and `ledger::keeper` picks which.

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

id!(
    /// A merchant (tenant) in the control schema's directory; its schema is `t_<id>`.
    TenantId
);
id!(
    /// An alliance in the control schema; its schema is `a_<id>`.
    AllianceId
);
id!(
    /// A lot of points in one ledger (a mall's or an alliance's): what one credit left to spend.
    LotId
);
id!(
    /// An entry of one ledger (a mall's or an alliance's).
    EntryId
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
