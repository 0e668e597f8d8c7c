//! Every bound of the sandbox, in one place (documented in examples/README.md and the
//! project README).

/// Operations one evaluation may perform (Rhai counts expression steps).
pub const MAX_OPERATIONS: u64 = 200_000;
/// Function call nesting.
pub const MAX_CALL_LEVELS: usize = 16;
/// Expression nesting at top level and inside functions.
pub const MAX_EXPR_DEPTH: usize = 64;
pub const MAX_FUNCTION_EXPR_DEPTH: usize = 32;
/// Characters in one string.
pub const MAX_STRING_SIZE: usize = 4_096;
/// Elements of one array and entries of one map (low thousands: larger limits make
/// Rhai's container building slower).
pub const MAX_ARRAY_SIZE: usize = 1_000;
pub const MAX_MAP_SIZE: usize = 1_000;
/// Variables alive at once and functions a script may define.
pub const MAX_VARIABLES: usize = 256;
pub const MAX_FUNCTIONS: usize = 64;
/// Wall-clock time one evaluation may take.
pub const MAX_WALL_MS: u64 = 50;
/// Size of a script's source.
pub const MAX_SCRIPT_BYTES: usize = 64 * 1024;
/// Effects one evaluation may return.
pub const MAX_EFFECTS: usize = 50;
/// Largest amount in one effect.
pub const MAX_AMOUNT: i64 = 1_000_000_000;
/// Referral depth a rule can reach.
pub const MAX_REFERRAL_DEPTH: i64 = 3;
/// Characters of names (counters, tags) and memos.
pub const MAX_NAME_CHARS: usize = 64;
pub const MAX_MEMO_CHARS: usize = 200;
