//! The one shared, bounded Rhai engine. Options apply at compile time, so scripts are
//! compiled and run on the same engine. No module loading, no `eval`, printing goes
//! nowhere, and a wall-clock deadline is enforced through the progress callback.

use std::cell::Cell;
use std::time::{Duration, Instant};

use rhai::{AST, Dynamic, Engine, Map, OptimizationLevel, Scope};

use crate::effects::{self, Effect};
use crate::error::{CompileError, RunError};
use crate::input::{EventInput, Input, MemberInput, json_to_dynamic};
use crate::limits;

thread_local! {
    /// Deadline of the evaluation running on this thread.
    static DEADLINE: Cell<Option<Instant>> = const { Cell::new(None) };
}

/// A script that failed to compile, with where.
pub struct Sandbox {
    engine: Engine,
}

impl Default for Sandbox {
    fn default() -> Self {
        Self::new()
    }
}

impl Sandbox {
    pub fn new() -> Self {
        let mut engine = Engine::new();
        engine
            .set_max_operations(limits::MAX_OPERATIONS)
            .set_max_call_levels(limits::MAX_CALL_LEVELS)
            .set_max_expr_depths(limits::MAX_EXPR_DEPTH, limits::MAX_FUNCTION_EXPR_DEPTH)
            .set_max_string_size(limits::MAX_STRING_SIZE)
            .set_max_array_size(limits::MAX_ARRAY_SIZE)
            .set_max_map_size(limits::MAX_MAP_SIZE)
            .set_max_variables(limits::MAX_VARIABLES)
            .set_max_functions(limits::MAX_FUNCTIONS)
            .set_max_modules(0)
            .set_optimization_level(OptimizationLevel::Simple)
            .set_strict_variables(true);
        engine.set_module_resolver(rhai::module_resolvers::DummyModuleResolver::new());
        engine.disable_symbol("eval");
        engine.disable_symbol("import");
        engine.disable_symbol("export");
        engine.on_print(|_| {});
        engine.on_debug(|_, _, _| {});
        engine.on_progress(|ops| {
            if ops % 256 != 0 {
                return None;
            }
            let late = DEADLINE.with(|d| d.get().is_some_and(|at| Instant::now() > at));
            late.then(|| Dynamic::from("timeout"))
        });
        effects::register(&mut engine);
        Self { engine }
    }

    #[cfg(test)]
    pub(crate) fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Compiles a script (checking its size) with the variables it will see declared.
    pub fn compile(&self, script: &str) -> Result<AST, CompileError> {
        if script.len() > limits::MAX_SCRIPT_BYTES {
            return Err(CompileError {
                line: 0,
                column: 0,
                message: format!("the script is larger than {} bytes", limits::MAX_SCRIPT_BYTES),
            });
        }
        // Declared (strict variables) but not as constants: the optimizer would fold
        // constant empty maps into the script.
        let mut scope = Scope::new();
        scope.push("event", Map::new());
        scope.push("member", Map::new());
        scope.push("params", Map::new());
        self.engine.compile_with_scope(&scope, script).map_err(|e| CompileError {
            line: e.1.line().unwrap_or(0),
            column: e.1.position().unwrap_or(0),
            message: e.0.to_string(),
        })
    }

    /// Runs a compiled rule against one input; returns its effects. Pure: nothing
    /// outside the sandbox is touched. Call it on a blocking thread.
    pub fn run(&self, ast: &AST, input: &Input) -> Result<Vec<Effect>, RunError> {
        self.run_on(ast, &input.event, &input.member, &input.params)
    }

    /// `run` on an input's parts, borrowed (nothing is copied to build an `Input`).
    pub fn run_on(
        &self,
        ast: &AST,
        event: &EventInput,
        member: &MemberInput,
        params: &serde_json::Value,
    ) -> Result<Vec<Effect>, RunError> {
        // Built by hand: the same values as `rhai::serde::to_dynamic`, much faster.
        let mut scope = Scope::with_capacity(3);
        scope.push_constant_dynamic("event", event.to_dynamic());
        scope.push_constant_dynamic("member", member.to_dynamic());
        scope.push_constant_dynamic("params", json_to_dynamic(params));
        DEADLINE.with(|d| d.set(Some(Instant::now() + Duration::from_millis(limits::MAX_WALL_MS))));
        let result = self.engine.eval_ast_with_scope::<Dynamic>(&mut scope, ast);
        DEADLINE.with(|d| d.set(None));
        let value = result.map_err(|e| run_error(*e))?;
        effects::from_result(value)
    }
}

fn run_error(e: rhai::EvalAltResult) -> RunError {
    use rhai::EvalAltResult as E;
    let kind = match &e {
        E::ErrorTerminated(..) => "timeout",
        E::ErrorTooManyOperations(..) => "too_many_operations",
        E::ErrorStackOverflow(..)
        | E::ErrorDataTooLarge(..)
        | E::ErrorTooManyVariables(..)
        | E::ErrorTooManyModules(..) => "limit",
        _ => "script_error",
    };
    let message = match &e {
        E::ErrorTerminated(..) => format!("the script ran longer than {} ms", limits::MAX_WALL_MS),
        other => other.to_string(),
    };
    RunError { kind, message }
}
