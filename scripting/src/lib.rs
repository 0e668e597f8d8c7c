//! Earn rules as sandboxed Rhai scripts (SPEC R2, R3, R7). No database here: a script is
//! pure — (event, member, params) → effects — and the platform applies the effects.

pub mod effects;
pub mod error;
pub mod input;
pub mod limits;
pub mod sandbox;
pub mod testfile;

pub use effects::Effect;
pub use error::{CompileError, RunError};
pub use input::{EventInput, Input, LevelInput, LockInput, MemberInput, ProfileInput};
pub use rhai::AST;
pub use sandbox::Sandbox;
