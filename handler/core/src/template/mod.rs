//! Templates: small Rhai programs that build JSON from JSON (a webhook's `transform`), compiled once and run
//! in a sandbox. Why Rhai: docs/template-engines.md.
//!
//! A run is a function of its input: no I/O, no `import`, no `eval`, no `print`, no clock to read. It is
//! bounded by counts (so that the same input fails the same way, and a failed transform is never retried):
//! [`MAX_OPERATIONS`] steps (an endless loop stops within milliseconds), [`MAX_CALL_DEPTH`] nested calls (no
//! stack overflow), the sizes of strings, arrays and maps; and by what rhai's own checks cannot see: the bytes
//! a run allocates ([`memory`], counted by the allocator the handler installs) and, for single steps that work
//! through a large string, a [`DEADLINE`] of this thread's processor time: the one clock the core reads, as a bound.

mod memory;
mod transform;

pub use memory::CountingAllocator;
pub use transform::{Transform, TRANSFORM_INPUTS};

use rhai::packages::{Package, StandardPackage};
use rhai::{ASTFlags, ASTNode, Dynamic, Engine, EvalAltResult, Expr, ImmutableString, Scope, Stmt, AST};
use serde_json::Value;
use std::cell::Cell;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

/// Steps a run may take: a typical reshape takes a few dozen, an endless loop stops after about 1 ms.
pub const MAX_OPERATIONS: u64 = 1_000_000;
/// The longest string a run may hold: the largest event, so that any field of any body fits.
pub const MAX_STRING_BYTES: usize = 256 * 1024;
/// The most items an array or a map may hold.
pub const MAX_ITEMS: usize = 16_384;
/// How deeply functions may call each other.
pub const MAX_CALL_DEPTH: usize = 32;
/// The longest template source accepted.
pub const MAX_SOURCE_BYTES: usize = 16 * 1024;
/// The most bytes a run may allocate, in all (counted where the allocator counts, see [`memory`]).
pub const MAX_MEMORY_BYTES: usize = 64 * 1024 * 1024;
/// The most processor time a run may take, whatever its steps are (time on this thread, not on the clock: a
/// busy machine does not make a run fail that would pass on an idle one).
pub const DEADLINE: Duration = Duration::from_millis(40);

thread_local! {
    /// The running template's deadline (in this thread's processor time) and the allocation count it started
    /// at, on this thread.
    static RUN: Cell<Option<(Duration, usize)>> = const { Cell::new(None) };
}

fn engine() -> &'static Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    ENGINE.get_or_init(|| {
        // `new_raw`: no module resolver, no `print` or `debug` reaching stdout.
        let mut engine = Engine::new_raw();
        engine.register_global_module(StandardPackage::new().as_shared_module());
        engine.disable_symbol("eval");
        engine.set_max_operations(MAX_OPERATIONS);
        engine.set_max_string_size(MAX_STRING_BYTES);
        engine.set_max_array_size(MAX_ITEMS);
        engine.set_max_map_size(MAX_ITEMS);
        engine.set_max_call_levels(MAX_CALL_DEPTH);
        engine.set_max_expr_depths(64, 32);
        engine.set_strict_variables(true);
        // rhai checks a string's size after `replace` made it: checked before, here.
        engine
            .register_fn("replace", |text: &mut ImmutableString, find: &str, by: &str| bounded_replace(text, find, by));
        engine.register_fn("replace", |text: &mut ImmutableString, find: char, by: &str| {
            bounded_replace(text, find.encode_utf8(&mut [0; 4]), by)
        });
        engine.on_progress(|operations| {
            let (deadline, allocated_at_start) = RUN.get()?;
            if memory::allocated().wrapping_sub(allocated_at_start) > MAX_MEMORY_BYTES {
                return Some(Dynamic::from(format!("more than {} MiB allocated", MAX_MEMORY_BYTES >> 20)));
            }
            (operations % 64 == 0 && cpu_time() > deadline)
                .then(|| Dynamic::from(format!("longer than {} ms", DEADLINE.as_millis())))
        });
        engine
    })
}

/// Where `ast` changes a map or an array through an index, if it does, and how: an assignment (`m[k] = v`,
/// `m.a[i] += v`) or a method call (`a[i].push(v)`). rhai checks only the item such a change reaches, never the
/// map or array holding it, which could then hold one long string thousands of times and be written whole as
/// text (gigabytes) before any check. A method call after an index is refused whatever it does: the syntax does
/// not say whether it changes the item.
fn change_through_index(ast: &AST) -> Option<(rhai::Position, &'static str)> {
    fn through_index(target: &Expr) -> bool {
        match target {
            Expr::Index(..) => true,
            Expr::Dot(chain, ..) => through_index(&chain.lhs) || through_index(&chain.rhs),
            _ => false,
        }
    }
    fn calls_method(expr: &Expr) -> bool {
        match expr {
            Expr::MethodCall(..) => true,
            Expr::Dot(chain, ..) | Expr::Index(chain, ..) => calls_method(&chain.lhs) || calls_method(&chain.rhs),
            _ => false,
        }
    }
    let mut found = None;
    ast.walk(&mut |path: &[ASTNode]| {
        found = match path.last() {
            Some(ASTNode::Stmt(Stmt::Assignment(assignment))) if through_index(&assignment.1.lhs) => {
                Some((assignment.1.lhs.position(), "an assignment through [...]"))
            }
            // Without `BREAK`, the chain goes on after the index: its next link's `lhs` is the index, its `rhs`
            // the rest (`a[i].f()`; `a[i.f()].x` calls a method only to make the index).
            Some(ASTNode::Expr(Expr::Index(chain, flags, at)))
                if !flags.contains(ASTFlags::BREAK)
                    && match &chain.rhs {
                        Expr::Dot(rest, ..) | Expr::Index(rest, ..) => calls_method(&rest.rhs),
                        other => calls_method(other),
                    } =>
            {
                Some((*at, "a method call after [...]"))
            }
            _ => None,
        };
        found.is_none()
    });
    found
}

/// `value` as JSON text of at most `limit` bytes, written no further than that.
pub(crate) fn json_text(value: &Dynamic, limit: usize) -> Result<String, String> {
    struct Bounded(Vec<u8>, usize);
    impl std::io::Write for Bounded {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            if self.0.len() + bytes.len() > self.1 {
                return Err(std::io::Error::other("too long"));
            }
            self.0.extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut out = Bounded(Vec::new(), limit);
    match serde_json::to_writer(&mut out, value) {
        Ok(()) => String::from_utf8(out.0).map_err(|e| e.to_string()),
        Err(e) if e.is_io() => Err(format!("made JSON over the limit of {limit} bytes")),
        Err(e) => Err(format!("made something that is not JSON: {e}")),
    }
}

/// The processor time this thread has used (the clock where a thread's time cannot be read).
fn cpu_time() -> Duration {
    #[cfg(unix)]
    {
        let mut now = libc::timespec { tv_sec: 0, tv_nsec: 0 };
        // SAFETY: `now` is a valid timespec to write into; the clock id is a constant of the platform.
        if unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut now) } == 0 {
            return Duration::new(now.tv_sec as u64, now.tv_nsec as u32);
        }
    }
    static START: OnceLock<Instant> = OnceLock::new();
    START.get_or_init(Instant::now).elapsed()
}

fn bounded_replace(text: &mut ImmutableString, find: &str, by: &str) -> Result<(), Box<EvalAltResult>> {
    let grows = by.len().saturating_sub(find.len());
    let count = if grows == 0 || find.is_empty() { 0 } else { text.matches(find).count() };
    if text.len() + count * grows > MAX_STRING_BYTES {
        return Err(format!("replace would make a string over {MAX_STRING_BYTES} bytes").into());
    }
    *text = text.replace(find, by).into();
    Ok(())
}

/// A compiled template.
#[derive(Clone)]
pub struct Template {
    source: Arc<str>,
    ast: Arc<AST>,
}

/// Why a template does not compile or a run failed, with where (line and position) when the engine says.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct TemplateError(String);

impl Template {
    /// Compiles `source`, which may read the variables `inputs` and nothing else.
    pub fn compile(source: &str, inputs: &[&str]) -> Result<Template, TemplateError> {
        if source.trim().is_empty() {
            return Err(TemplateError("is empty".to_owned()));
        }
        if source.len() > MAX_SOURCE_BYTES {
            return Err(TemplateError(format!("is {} bytes, over the limit of {MAX_SOURCE_BYTES}", source.len())));
        }
        let mut scope = Scope::new();
        // Declared, not constant: the optimiser would otherwise fold the placeholder values into the program.
        for name in inputs {
            scope.push_dynamic(*name, Dynamic::UNIT);
        }
        let ast =
            engine().compile_with_scope(&scope, source).map_err(|e| TemplateError(format!("does not compile: {e}")))?;
        if let Some((at, what)) = change_through_index(&ast) {
            return Err(TemplateError(format!(
                "does not compile: {what} ({at}); take the item into a variable, change it there and put it back \
                 with map.set(key, value) or array.set(index, value), which rhai checks against the limits"
            )));
        }
        Ok(Template { source: source.into(), ast: Arc::new(ast) })
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    /// Runs the template on `inputs` (each a variable): the JSON it makes, `None` when it makes nothing (`()`),
    /// or why it failed.
    pub fn render(&self, inputs: &[(&str, &Value)]) -> Result<Option<Value>, TemplateError> {
        let inputs = inputs.iter().map(|(name, value)| (*name, dynamic(value))).collect();
        let made = self.run(inputs)?;
        if made.is_unit() {
            return Ok(None);
        }
        // Through bounded text: a value may hold one large string many times over.
        let text = json_text(&made, crate::events::MAX_EVENT_BYTES).map_err(TemplateError)?;
        serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| TemplateError(format!("made something that is not JSON: {e}")))
    }

    fn run(&self, inputs: Vec<(&str, Dynamic)>) -> Result<Dynamic, TemplateError> {
        let mut scope = Scope::new();
        for (name, value) in inputs {
            scope.push_constant_dynamic(name, value);
        }
        RUN.set(Some((cpu_time() + DEADLINE, memory::allocated())));
        // rhai has internal assertions: one failing fails this run, not the process.
        let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            engine().eval_ast_with_scope::<Dynamic>(&mut scope, &self.ast)
        }));
        RUN.set(None);
        match ran {
            Ok(made) => made.map_err(|error| match *error {
                // Stopped by `on_progress`: its words, where it stopped.
                EvalAltResult::ErrorTerminated(why, at) => TemplateError(format!("failed: {why} ({at})")),
                error => TemplateError(format!("failed: {error}")),
            }),
            Err(_) => Err(TemplateError("failed: the template engine stopped on an internal error".to_owned())),
        }
    }
}

/// A JSON value as the engine holds it (strings without a round trip through serde).
fn dynamic(value: &Value) -> Dynamic {
    match value {
        Value::String(text) => Dynamic::from(text.clone()),
        other => rhai::serde::to_dynamic(other).unwrap_or(Dynamic::UNIT),
    }
}

impl PartialEq for Template {
    fn eq(&self, other: &Template) -> bool {
        self.source == other.source
    }
}

impl Eq for Template {}

impl std::fmt::Debug for Template {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Template({:?})", self.source)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn run(source: &str) -> Result<Option<Value>, TemplateError> {
        let body = json!({"name": "service:subscribed", "payload": {"fiscalCode": "AAABBB00A00A000B"}});
        Transform::compile(source)?.apply(&body, &json!({"serviceId": "S1"}), "evt_1", None)
    }

    #[test]
    fn a_transform_reshapes_the_body_or_makes_nothing() {
        assert_eq!(
            run("#{ type: body.name, fc: body.payload.fiscalCode, service: attributes.serviceId, id: eventId }")
                .unwrap(),
            Some(json!({"fc": "AAABBB00A00A000B", "id": "evt_1", "service": "S1", "type": "service:subscribed"}))
        );
        assert_eq!(run("if body.payload.fiscalCode.starts_with(\"ZZZ\") { body } else { () }").unwrap(), None);
        assert_eq!(run("correlationId").unwrap(), None, "null is nothing");
        assert_eq!(run("[1, 2.5, true, \"x\"]").unwrap(), Some(json!([1, 2.5, true, "x"])));
    }

    #[test]
    fn a_template_that_does_not_compile_says_where() {
        let error = |source: &str| Transform::compile(source).unwrap_err().to_string();
        assert_eq!(error("  "), "is empty");
        assert!(error("#{ a: body.name ").starts_with("does not compile: "), "{}", error("#{ a: body.name "));
        assert!(error("#{ a: body.name ").contains("line 1"), "{}", error("#{ a: body.name "));
        let misspelt = error("bdy.name");
        assert!(misspelt.contains("bdy") && misspelt.contains("line 1, position 1"), "{misspelt}");
        assert!(error(&"1+".repeat(10_000)).contains("over the limit"));
        assert!(error("eval(\"body\")").starts_with("does not compile"), "eval is not there");
    }

    /// Each stops with an error, deterministically: no hang, no crash, no huge allocation.
    #[test]
    fn hostile_templates_fail_with_an_error() {
        for (source, expected) in [
            ("loop { }", "Too many operations|longer than 40 ms"),
            ("let n = 0; while true { n += 1; }", "Too many operations|longer than 40 ms"),
            ("fn f(x) { f(x + 1) } f(0)", "Stack overflow"),
            ("let s = \"a\"; loop { s += s; }", "Length of string"),
            ("let s = \"x\"; s.pad(100_000_000, \"y\"); s", "Length of string"),
            ("let a = [1]; loop { a += a; }", "Size of array|allocated"),
            (
                "let m = #{}; for i in 0..1_000_000 { m.set(`k${i}`, i); } m",
                "Size of object map|Too many operations|longer than 40 ms|allocated",
            ),
            (
                "let s = \"x\"; s.pad(200_000, \"y\"); let m = #{}; for i in 0..100_000 { m.set(`k${i}`, s + i); } m",
                "Length of string|allocated|longer than 40 ms",
            ),
            // Past rhai's own checks: a string `replace` makes, a step that reads a long string again and again.
            ("let s = \"a\"; for i in 0..16 { s += s; } s.replace(\"a\", s); s", "replace would make a string over"),
            ("let s = \"a\"; for i in 0..17 { s += s; } loop { s.index_of(\"z\"); }", "longer than 40 ms"),
        ] {
            let error = match run(source) {
                Err(error) => error.to_string(),
                Ok(made) => panic!("{source}: made {} bytes", made.map_or(0, |v| v.to_string().len())),
            };
            // A debug build is slower: its deadline may come before its step limit.
            let stopped = expected.split('|').any(|why| error.contains(why));
            assert!(error.starts_with("failed: ") && stopped, "{source}: {error}");
        }
    }

    /// rhai checks what a change through an index reaches, not the map or array it grows: such a map could
    /// hold one long string thousands of times, and `${m}` writes it whole before any check. Refused at compile;
    /// every other way to grow a map or an array is checked whole, and fails before anything is written.
    #[test]
    fn no_map_or_array_can_hold_one_long_string_many_times() {
        let error = Transform::compile("let m = #{}; m[\"a\"] = 1; m").unwrap_err().to_string();
        assert!(error.contains("an assignment through [...] (line 1, position 15); take the item"), "{error}");
        let error = Transform::compile("let a = [[]]; a[0].push(1); a").unwrap_err().to_string();
        assert!(error.contains("a method call after [...] (line 1, position 16)"), "{error}");
        for through in [
            "let a = [1]; a[0] += 1; a",
            "let m = #{x: [1]}; m.x[0] = 2; m",
            "fn f(m) { m[\"k\"] = 1 } f(#{})",
            "let a = [[]]; let f = |s| a[0].push(s); a",
            "let a = [#{}]; a[0].mixin(#{b: 1}); a",
            "fn g(s) { this.push(s) } let a = [[]]; a[0].g(1); a",
        ] {
            let refused = Transform::compile(through).unwrap_err().to_string();
            assert!(refused.contains("through [...]") || refused.contains("after [...]"), "{through}: {refused}");
        }
        // Reading through an index, and an index made by a method call, are fine.
        assert_eq!(run("let a = [#{n: \"x\"}]; let i = \"0\"; a[i.parse_int()].n").unwrap(), Some(json!("x")));
        assert_eq!(run("let m = #{}; m.set(\"a\", 1); let a = [0]; a.set(0, m); a").unwrap(), Some(json!([{"a": 1}])));
        let long = "let s = \"x\"; for i in 0..17 { s += s; }";
        for (grow, grown) in [
            ("let m = #{}; for i in 0..4_000 { m.set(`k${i}`, s); }", "m"),
            ("let a = []; for i in 0..4_000 { a.push(s); }", "a"),
            ("let a = []; for i in 0..4_000 { a += [s]; }", "a"),
            ("let m = #{}; for i in 0..4_000 { let n = #{}; n.set(`k${i}`, s); m.mixin(n); }", "m"),
            ("let a = [s]; for i in 0..12 { a = [a, a]; }", "a"),
            ("let a = []; a.pad(4_000, s);", "a"),
            ("let a = [[]]; for i in 0..4_000 { let x = a[0]; x.push(s); a.set(0, x); }", "a"),
        ] {
            let before = memory::allocated();
            let error = run(&format!("{long} {grow} `${{{grown}}}`.len()")).unwrap_err().to_string();
            assert!(error.contains("too large"), "{grow}: {error}");
            assert!(memory::allocated() - before < 64 << 20, "{grow}: {} MiB", (memory::allocated() - before) >> 20);
        }
    }

    /// A body is written no further than the limit, whatever it holds.
    #[test]
    fn a_body_is_written_no_further_than_the_limit() {
        let many = "let s = \"x\"; for i in 0..17 { s += s; } [s, s, s]";
        let error = run(many).unwrap_err().to_string();
        assert!(error.contains("too large") || error == "made JSON over the limit of 262144 bytes", "{error}");
    }

    #[test]
    fn the_allocator_counts_what_this_thread_allocates() {
        let before = memory::allocated();
        let block = vec![7u8; 3 << 20];
        assert!(memory::allocated() - before >= 3 << 20, "a 3 MiB block is counted");
        drop(block);
    }

    #[test]
    fn a_transform_is_stored_as_its_source_and_read_back_compiled() {
        let transform = Transform::compile("body.payload").unwrap();
        assert_eq!(serde_json::to_value(&transform).unwrap(), json!("body.payload"));
        let read: Transform = serde_json::from_value(json!("body.payload")).unwrap();
        assert_eq!(read, transform);
        // Stored before an engine that no longer compiles it: read, and failing its own deliveries alone.
        let broken: Transform = serde_json::from_value(json!("body.")).unwrap();
        let error = broken.apply(&json!({}), &json!({}), "evt", None).unwrap_err().to_string();
        assert!(error.starts_with("does not compile"), "{error}");
    }
}
