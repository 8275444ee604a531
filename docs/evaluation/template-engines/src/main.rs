//! Scratch benchmark of sandboxed expression engines for the webhook dispatcher.
//! See docs/template-engines.md. Build and run (never inside the main workspace):
//!   CARGO_TARGET_DIR=/tmp/tpl-eval-target CARGO_BUILD_JOBS=1 nice -n 19 cargo run --release
//! `main` with no argument prints the figures; `main hostile ENGINE CASE` runs one hostile case
//! (the parent runs each one in its own child process, killed after 5 s).

use serde_json::{json, Value};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const DEADLINE: Duration = Duration::from_millis(50);
const ENGINES: &[&str] = &["jaq", "minijinja", "rhai", "rhai-deadline-only", "quickjs"];
const CASES: &[&str] = &["noop", "loop", "recursion", "string", "string1", "array", "array1", "array_out", "deep_parse"];

fn input() -> Value {
    json!({"body":{"name":"service:subscribed","payload":{"fiscalCode":"AAABBB00A00A000B","serviceId":"S1"}},
           "attributes":{"serviceId":"S1","name":"wh1"},"eventId":"01J...","correlationId":"c-1"})
}

fn expected() -> Value {
    json!({"type":"service:subscribed","customer":{"fiscalCode":"AAABBB00A00A000B"},"service":"S1","eventId":"01J..."})
}

/// What a per-engine module offers to the harness.
trait Eng {
    type Compiled;
    fn compile(&self, src: &str) -> Result<Self::Compiled, String>;
    /// `Ok(None)` means "nothing".
    fn eval(&self, c: &Self::Compiled, input: &Value) -> Result<Option<Value>, String>;
    fn typical() -> &'static str;
    fn nothing() -> &'static str;
    fn hostile(case: &str) -> &'static str;
}

/// `(((...1...)))` nested 100 000 deep, with a per-engine prefix and suffix.
fn deep(prefix: &str, suffix: &str) -> &'static str {
    let n = 100_000;
    Box::leak(format!("{prefix}{}1{}{suffix}", "(".repeat(n), ")".repeat(n)).into_boxed_str())
}

// ---------------------------------------------------------------- jaq
#[cfg(feature = "jaq")]
mod jaq {
    use super::*;
    use jaq_core::load::{Arena, File, Loader};
    use jaq_core::{data, unwrap_valr, Compiler, Ctx, Vars};
    use jaq_json::{Num, Val};
    use serde::Deserialize;

    pub struct E;
    pub type Filter = jaq_core::Filter<data::JustLut<Val>>;

    pub fn to_json(v: &Val) -> Value {
        match v {
            Val::Null => Value::Null,
            Val::Bool(b) => Value::Bool(*b),
            Val::Num(Num::Int(i)) => json!(*i as i64),
            Val::Num(Num::Float(f)) => serde_json::Number::from_f64(*f).map(Value::Number).unwrap_or(Value::Null),
            Val::Num(Num::BigInt(b)) => serde_json::from_str(&b.to_string()).unwrap_or(Value::Null),
            Val::Num(Num::Dec(d)) => serde_json::from_str(d).unwrap_or(Value::Null),
            Val::TStr(b) | Val::BStr(b) => Value::String(String::from_utf8_lossy(&b[..]).into_owned()),
            Val::Arr(a) => Value::Array(a.iter().map(to_json).collect()),
            Val::Obj(o) => Value::Object(
                o.iter()
                    .map(|(k, v)| {
                        let k = match k {
                            Val::TStr(b) | Val::BStr(b) => String::from_utf8_lossy(&b[..]).into_owned(),
                            other => other.to_string(),
                        };
                        (k, to_json(v))
                    })
                    .collect(),
            ),
        }
    }

    impl Eng for E {
        type Compiled = Filter;
        fn compile(&self, code: &str) -> Result<Filter, String> {
            let defs = jaq_core::defs().chain(jaq_std::defs()).chain(jaq_json::defs());
            let funs = jaq_core::funs().chain(jaq_std::funs()).chain(jaq_json::funs());
            let loader = Loader::new(defs);
            let arena = Arena::default();
            let modules = loader.load(&arena, File { code, path: () }).map_err(|e| format!("load: {} errors", e.len()))?;
            Compiler::default().with_funs(funs).compile(modules).map_err(|e| format!("compile: {} errors", e.len()))
        }
        fn eval(&self, f: &Filter, input: &Value) -> Result<Option<Value>, String> {
            let v = Val::deserialize(input).map_err(|e| e.to_string())?;
            let ctx = Ctx::<data::JustLut<Val>>::new(&f.lut, Vars::new([]));
            let mut out = f.id.run((ctx, v)).map(unwrap_valr);
            match out.next() {
                None => Ok(None),
                Some(Ok(v)) => Ok(Some(to_json(&v))),
                Some(Err(e)) => Err(format!("{e:?}").chars().take(120).collect()),
            }
        }
        fn typical() -> &'static str {
            r#"{type: .body.name, customer: {fiscalCode: .body.payload.fiscalCode}, service: .attributes.serviceId, eventId: .eventId}"#
        }
        fn nothing() -> &'static str {
            r#"if .attributes.name == "other" then .body else empty end"#
        }
        fn hostile(case: &str) -> &'static str {
            match case {
                "noop" => "null",
                "loop" => "last(repeat(1))",
                "recursion" => "def f: 1 + f; f",
                "string" => r#"reduce range(27) as $i ("a"; . + .) | length"#,
                "string1" => r#""a" * 100000000 | length"#,
                "array" => "reduce range(27) as $i ([0]; . + .) | length",
                "array1" => "[range(100000000)] | length",
                "array_out" => "[range(10000000)] | tojson | length",
                "deep_parse" => deep("", ""),
                _ => unreachable!(),
            }
        }
    }
}

// ---------------------------------------------------------------- minijinja
#[cfg(feature = "minijinja")]
mod mj {
    use super::*;
    use minijinja::{Environment, Value as MV};

    pub fn env() -> Environment<'static> {
        let mut env = Environment::new();
        env.set_fuel(Some(FUEL));
        env.set_recursion_limit(100);
        env
    }
    pub const FUEL: u64 = 100_000;

    /// Expression form: `Environment::compile_expression`, result is a minijinja Value.
    pub struct Expr(pub Environment<'static>);
    impl Eng for Expr {
        type Compiled = minijinja::Expression<'static, 'static>;
        fn compile(&self, src: &str) -> Result<Self::Compiled, String> {
            // Leak the env reference for the benchmark's convenience (Expression borrows it).
            let env: &'static Environment<'static> = Box::leak(Box::new(self.0.clone()));
            env.compile_expression_owned(src.to_owned()).map_err(|e| e.to_string())
        }
        fn eval(&self, c: &Self::Compiled, input: &Value) -> Result<Option<Value>, String> {
            let v = c.eval(MV::from(minijinja::value::Serde(input))).map_err(|e| e.to_string())?;
            if v.is_none() || v.is_undefined() {
                return Ok(None);
            }
            serde_json::to_value(&v).map(Some).map_err(|e| e.to_string())
        }
        fn typical() -> &'static str {
            r#"{"type": body.name, "customer": {"fiscalCode": body.payload.fiscalCode}, "service": attributes.serviceId, "eventId": eventId}"#
        }
        fn nothing() -> &'static str {
            r#"none if attributes.name != "other" else body"#
        }
        fn hostile(_case: &str) -> &'static str {
            unreachable!("hostile cases use templates")
        }
    }

    /// Text template form: renders JSON text (`tojson`), parsed back with serde_json. Empty text = nothing.
    pub struct Tpl(pub Environment<'static>);
    impl Eng for Tpl {
        type Compiled = minijinja::Template<'static, 'static>;
        fn compile(&self, src: &str) -> Result<Self::Compiled, String> {
            let env: &'static Environment<'static> = Box::leak(Box::new(self.0.clone()));
            env.template_from_str(Box::leak(src.to_owned().into_boxed_str())).map_err(|e| e.to_string())
        }
        fn eval(&self, c: &Self::Compiled, input: &Value) -> Result<Option<Value>, String> {
            let s = c.render(MV::from(minijinja::value::Serde(input))).map_err(|e| e.to_string())?;
            if s.trim().is_empty() {
                return Ok(None);
            }
            serde_json::from_str(&s).map(Some).map_err(|e| e.to_string())
        }
        fn typical() -> &'static str {
            r#"{"type": {{ body.name|tojson }}, "customer": {"fiscalCode": {{ body.payload.fiscalCode|tojson }}}, "service": {{ attributes.serviceId|tojson }}, "eventId": {{ eventId|tojson }}}"#
        }
        fn nothing() -> &'static str {
            r#"{% if attributes.name == "other" %}{{ body|tojson }}{% endif %}"#
        }
        fn hostile(case: &str) -> &'static str {
            match case {
                "noop" => "x",
                "loop" => "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
                "recursion" => "{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}",
                "string" => r#"{% set ns = namespace(s="a") %}{% for i in range(27) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s|length }}"#,
                "string1" => r#"{{ ("a" * 100000000)|length }}"#,
                "array" => r#"{% set ns = namespace(a=[0]) %}{% for i in range(27) %}{% set ns.a = (ns.a + ns.a)|list %}{% endfor %}{{ ns.a|length }}"#,
                "array1" => r#"{{ ([0] * 100000000)|length }}"#,
                "array_out" => r#"{{ ([0] * 100000000)|tojson|length }}"#,
                "deep_parse" => deep("{{ ", " }}"),
                _ => unreachable!(),
            }
        }
    }
}

// ---------------------------------------------------------------- rhai
#[cfg(feature = "rhai")]
mod rh {
    use super::*;
    use rhai::packages::Package;
    use rhai::{Dynamic, Engine, Scope, AST};
    use std::cell::Cell;

    thread_local! {
        static DEADLINE_AT: Cell<Option<Instant>> = const { Cell::new(None) };
    }

    pub fn engine() -> Engine {
        engine_with(true)
    }

    /// `max_ops = false`: no operation limit, so only the on_progress wall-clock deadline stops a loop.
    pub fn engine_with(max_ops: bool) -> Engine {
        let mut e = Engine::new_raw(); // no print/debug/eval side channels; add the standard package below
        e.register_global_module(rhai::packages::StandardPackage::new().as_shared_module());
        e.set_max_operations(if max_ops { 1_000_000 } else { 0 });
        e.set_max_string_size(1 << 20);
        e.set_max_array_size(10_000);
        e.set_max_map_size(10_000);
        e.set_max_call_levels(32);
        e.set_max_expr_depths(64, 32);
        e.on_progress(|ops| {
            if ops & 0xff != 0 {
                return None; // read the clock every 256 operations
            }
            DEADLINE_AT.with(|d| match d.get() {
                Some(t) if Instant::now() > t => Some(Dynamic::from("deadline")),
                _ => None,
            })
        });
        e
    }

    pub struct E(pub Engine);
    impl Eng for E {
        type Compiled = AST;
        fn compile(&self, src: &str) -> Result<AST, String> {
            self.0.compile(src).map_err(|e| e.to_string())
        }
        fn eval(&self, ast: &AST, input: &Value) -> Result<Option<Value>, String> {
            let mut scope = Scope::new();
            if let Value::Object(m) = input {
                for (k, v) in m {
                    scope.push_constant_dynamic(k.as_str(), rhai::serde::to_dynamic(v).map_err(|e| e.to_string())?);
                }
            }
            DEADLINE_AT.with(|d| d.set(Some(Instant::now() + DEADLINE)));
            let r = self.0.eval_ast_with_scope::<Dynamic>(&mut scope, ast);
            DEADLINE_AT.with(|d| d.set(None));
            let r = r.map_err(|e| e.to_string())?;
            if r.is_unit() {
                return Ok(None);
            }
            rhai::serde::from_dynamic::<Value>(&r).map(Some).map_err(|e| e.to_string())
        }
        fn typical() -> &'static str {
            r#"#{ "type": body.name, customer: #{ fiscalCode: body.payload.fiscalCode }, service: attributes.serviceId, eventId: eventId }"#
        }
        fn nothing() -> &'static str {
            r#"if attributes.name == "other" { body } else { () }"#
        }
        fn hostile(case: &str) -> &'static str {
            match case {
                "noop" => "()",
                "loop" => "loop { }",
                "recursion" => "fn f(x) { f(x + 1) + 1 } f(0)",
                "string" => r#"let s = "a"; for i in 0..27 { s += s; } s.len()"#,
                "string1" => r#"let s = ""; s.pad(100000000, "a"); s.len()"#,
                "array" => "let a = [0]; for i in 0..27 { a += a; } a.len()",
                "array1" => "let a = []; a.pad(100000000, 0); a.len()",
                "array_out" => r#"let s = ""; s.pad(1000000, "a"); let a = []; for i in 0..10000 { a.push(s); } let m = #{ a: a }; m.to_json().len()"#,
                "deep_parse" => deep("", ""),
                _ => unreachable!(),
            }
        }
    }
}

// ---------------------------------------------------------------- rquickjs
#[cfg(feature = "quickjs")]
mod qjs {
    use super::*;
    use rquickjs::{Context, Function, Persistent, Runtime};
    use std::cell::Cell;
    use std::rc::Rc;

    pub const MEMORY_LIMIT: usize = 32 << 20;

    pub struct E {
        pub rt: Runtime,
        pub ctx: Context,
        pub deadline: Rc<Cell<Option<Instant>>>,
        /// Build a fresh Context for every evaluation (isolation between evaluations).
        pub fresh_ctx: bool,
    }

    impl E {
        pub fn new(fresh_ctx: bool) -> Self {
            let rt = Runtime::new().unwrap();
            rt.set_memory_limit(MEMORY_LIMIT);
            rt.set_max_stack_size(256 * 1024);
            let deadline: Rc<Cell<Option<Instant>>> = Rc::new(Cell::new(None));
            let d = deadline.clone();
            rt.set_interrupt_handler(Some(Box::new(move || matches!(d.get(), Some(t) if Instant::now() > t))));
            let ctx = Context::full(&rt).unwrap();
            E { rt, ctx, deadline, fresh_ctx }
        }
    }

    fn wrap(src: &str) -> String {
        format!("(function(input) {{ const {{ body, attributes, eventId, correlationId }} = input; {src} }})")
    }

    pub enum Compiled {
        Fn(Persistent<Function<'static>>),
        Src(String),
    }

    fn run<'js>(ctx: &rquickjs::Ctx<'js>, f: Function<'js>, input: &Value) -> Result<Option<Value>, String> {
        let err = |e: rquickjs::Error| -> String {
            if matches!(e, rquickjs::Error::Exception) {
                let ex = ctx.catch();
                format!("{e}: {:?}", ex.as_exception().map(|x| x.message()).unwrap_or_default())
            } else {
                e.to_string()
            }
        };
        let arg = ctx.json_parse(serde_json::to_string(input).unwrap()).map_err(err)?;
        let r: rquickjs::Value = f.call((arg,)).map_err(err)?;
        if r.is_undefined() {
            return Ok(None);
        }
        match ctx.json_stringify(r).map_err(err)? {
            None => Ok(None),
            Some(s) => serde_json::from_str(&s.to_string().map_err(err)?).map(Some).map_err(|e| e.to_string()),
        }
    }

    impl Eng for E {
        type Compiled = Compiled;
        fn compile(&self, src: &str) -> Result<Compiled, String> {
            let code = wrap(src);
            if self.fresh_ctx {
                // Syntax check only; evaluation compiles again in its own context.
                self.ctx.with(|ctx| ctx.eval::<Function, _>(code.clone()).map(|_| ()).map_err(|e| e.to_string()))?;
                return Ok(Compiled::Src(code));
            }
            self.ctx.with(|ctx| {
                let f: Function = ctx.eval(code).map_err(|e| e.to_string())?;
                Ok(Compiled::Fn(Persistent::save(&ctx, f)))
            })
        }
        fn eval(&self, c: &Compiled, input: &Value) -> Result<Option<Value>, String> {
            self.deadline.set(Some(Instant::now() + DEADLINE));
            let r = match c {
                Compiled::Fn(p) => self.ctx.with(|ctx| {
                    let f = p.clone().restore(&ctx).map_err(|e| e.to_string())?;
                    run(&ctx, f, input)
                }),
                Compiled::Src(code) => {
                    let ctx = Context::full(&self.rt).unwrap();
                    ctx.with(|ctx| {
                        let f: Function = ctx.eval(code.clone()).map_err(|e| e.to_string())?;
                        run(&ctx, f, input)
                    })
                }
            };
            self.deadline.set(None);
            r
        }
        fn typical() -> &'static str {
            r#"return { type: body.name, customer: { fiscalCode: body.payload.fiscalCode }, service: attributes.serviceId, eventId };"#
        }
        fn nothing() -> &'static str {
            r#"if (attributes.name === "other") return body; return undefined;"#
        }
        fn hostile(case: &str) -> &'static str {
            match case {
                "noop" => "return null;",
                "loop" => "for (;;) {}",
                "recursion" => "function f(x) { return f(x + 1) + 1; } return f(0);",
                "string" => r#"let s = "a"; for (let i = 0; i < 27; i++) s = s + s; return s.length + s.charCodeAt(s.length - 1);"#,
                "string1" => r#"return "a".repeat(100000000).length;"#,
                "array" => "let a = [0]; for (let i = 0; i < 27; i++) a = a.concat(a); return a.length;",
                "array1" => "const a = []; for (let i = 0; i < 1e8; i++) a.push(i); return a.length;",
                "array_out" => r#"const s = "a".repeat(1000000); return JSON.stringify(new Array(10000).fill(s)).length;"#,
                "deep_parse" => deep("return ", ";"),
                _ => unreachable!(),
            }
        }
    }
}

// ---------------------------------------------------------------- harness
fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

/// Compile-time check: can the compiled program be shared across threads?
#[allow(dead_code)]
fn assert_send_sync<T: Send + Sync>() {}
#[allow(dead_code)]
fn send_sync_checks() {
    #[cfg(feature = "rhai")]
    {
        assert_send_sync::<rhai::Engine>();
        assert_send_sync::<rhai::AST>();
    }
    #[cfg(feature = "jaq")]
    assert_send_sync::<jaq::Filter>();
    #[cfg(feature = "minijinja")]
    {
        assert_send_sync::<minijinja::Environment<'static>>();
        assert_send_sync::<minijinja::Template<'static, 'static>>();
    }
    // rquickjs::Runtime is not Send without the `parallel` feature: one Runtime per worker thread.
}

/// The typical reshape on an input whose copied field is a 2 MiB string (larger than rhai's 1 MiB string limit).
fn big_field<E: Eng>(name: &str, e: &E) {
    let mut inp = input();
    inp["body"]["payload"]["fiscalCode"] = json!("x".repeat(2 << 20));
    let c = e.compile(E::typical()).unwrap();
    let r = e.eval(&c, &inp);
    println!("{name}: typical reshape copying a 2 MiB field -> {}", match r {
        Ok(Some(_)) => "ok".to_string(),
        Ok(None) => "nothing".to_string(),
        Err(m) => format!("error: {m}"),
    });
}

struct Row {
    name: String,
    first_compile_us: f64,
    compile_us: f64,
    eval_us: f64,
    order: String,
    correct: bool,
    nothing: String,
}

fn bench<E: Eng>(name: &str, e: &E, compile_iters: usize, eval_iters: usize) -> Row {
    let t = Instant::now();
    let c = e.compile(E::typical()).expect("compile typical");
    let first_compile_us = t.elapsed().as_secs_f64() * 1e6;
    let mut compile = vec![];
    for _ in 0..5 {
        let t = Instant::now();
        for _ in 0..compile_iters {
            std::hint::black_box(e.compile(E::typical()).unwrap());
        }
        compile.push(t.elapsed().as_secs_f64() * 1e6 / compile_iters as f64);
    }
    let inp = input();
    let out = e.eval(&c, &inp).expect("eval typical").expect("some output");
    let correct = out == expected();
    let keys: Vec<&str> = out.as_object().map(|m| m.keys().map(|k| k.as_str()).collect()).unwrap_or_default();
    let order = if keys == ["type", "customer", "service", "eventId"] {
        "template order".to_string()
    } else if keys == ["customer", "eventId", "service", "type"] {
        "sorted".to_string()
    } else {
        format!("{keys:?}")
    };
    // warm-up
    for _ in 0..eval_iters / 10 {
        std::hint::black_box(e.eval(&c, &inp).unwrap());
    }
    let mut evals = vec![];
    for _ in 0..5 {
        let t = Instant::now();
        for _ in 0..eval_iters {
            std::hint::black_box(e.eval(&c, std::hint::black_box(&inp)).unwrap());
        }
        evals.push(t.elapsed().as_secs_f64() * 1e6 / eval_iters as f64);
    }
    // "nothing"
    let n = e.compile(E::nothing()).expect("compile nothing");
    let r1 = e.eval(&n, &inp);
    let mut other = inp.clone();
    other["attributes"]["name"] = json!("other");
    let r2 = e.eval(&n, &other);
    let nothing = format!(
        "wh1 -> {}, other -> {}",
        match &r1 {
            Ok(None) => "nothing".to_string(),
            x => format!("{x:?}"),
        },
        match &r2 {
            Ok(Some(v)) if *v == inp["body"] => "body".to_string(),
            x => format!("{x:?}"),
        }
    );
    Row {
        name: name.to_string(),
        first_compile_us,
        compile_us: median(compile),
        eval_us: median(evals),
        order,
        correct,
        nothing,
    }
}

fn run_hostile(engine: &str, case: &str) -> Result<String, String> {
    match engine {
        #[cfg(feature = "jaq")]
        "jaq" => {
            let e = jaq::E;
            let c = e.compile(jaq::E::hostile(case))?;
            e.eval(&c, &Value::Null).map(|v| format!("{v:?}"))
        }
        #[cfg(feature = "minijinja")]
        "minijinja" => {
            let e = mj::Tpl(mj::env());
            let c = e.compile(mj::Tpl::hostile(case))?;
            c.render(()).map(|s| s.chars().take(60).collect()).map_err(|e| e.to_string())
        }
        #[cfg(feature = "rhai")]
        "rhai" => {
            let e = rh::E(rh::engine());
            let c = e.compile(rh::E::hostile(case))?;
            e.eval(&c, &json!({})).map(|v| format!("{v:?}"))
        }
        #[cfg(feature = "rhai")]
        "rhai-deadline-only" => {
            let e = rh::E(rh::engine_with(false));
            let c = e.compile(rh::E::hostile(case))?;
            e.eval(&c, &json!({})).map(|v| format!("{v:?}"))
        }
        #[cfg(feature = "quickjs")]
        "quickjs" => {
            let e = qjs::E::new(false);
            let c = e.compile(qjs::E::hostile(case))?;
            e.eval(&c, &json!({})).map(|v| format!("{v:?}"))
        }
        _ => Err("engine not built".into()),
    }
}

fn vm_hwm_kb() -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap();
    s.lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// Child side: run one hostile case on a thread with a normal 2 MiB stack, print one line.
fn child(engine: String, case: String) {
    // Cap the address space at 4 GiB so that an unbounded allocation fails here instead of eating the machine.
    unsafe {
        let lim = libc::rlimit { rlim_cur: 4 << 30, rlim_max: 4 << 30 };
        libc::setrlimit(libc::RLIMIT_AS, &lim);
    }
    let before = vm_hwm_kb();
    let h = std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(move || {
            let t = Instant::now();
            let r = run_hostile(&engine, &case);
            (t.elapsed(), r)
        })
        .unwrap();
    let (el, r) = h.join().unwrap_or_else(|_| (Duration::ZERO, Err("panicked".into())));
    let after = vm_hwm_kb();
    let (kind, msg) = match r {
        Ok(m) => ("OK", m),
        Err(m) => ("ERR", m),
    };
    let msg: String = msg.replace('\n', " ").chars().take(110).collect();
    println!("{kind}\t{:.1}\t{before}\t{after}\t{msg}", el.as_secs_f64() * 1e3);
}

struct HostileResult {
    outcome: String,
    ms: f64,
    maxrss_kb: i64,
    /// VmHWM growth measured inside the child, when it got to print it.
    growth_kb: Option<i64>,
}

/// Parent side: spawn the child, kill it after 5 s, collect exit status and peak RSS with wait4.
fn spawn_hostile(engine: &str, case: &str) -> HostileResult {
    let exe = std::env::current_exe().unwrap();
    let start = Instant::now();
    let mut child = Command::new(exe)
        .args(["hostile", engine, case])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    let mut killed = false;
    loop {
        let r = unsafe { libc::wait4(pid, &mut status, libc::WNOHANG, &mut ru) };
        if r == pid {
            break;
        }
        if start.elapsed() > Duration::from_secs(5) && !killed {
            unsafe { libc::kill(pid, libc::SIGKILL) };
            killed = true;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    let wall = start.elapsed().as_secs_f64() * 1e3;
    use std::io::Read;
    let (mut stdout, mut stderr) = (String::new(), String::new());
    child.stdout.take().unwrap().read_to_string(&mut stdout).ok();
    child.stderr.take().unwrap().read_to_string(&mut stderr).ok();
    let stderr_line: String = stderr.lines().find(|l| !l.trim().is_empty()).unwrap_or("").chars().take(100).collect();
    let mut growth_kb = None;
    let (outcome, ms) = if killed {
        ("hangs (killed after 5 s)".to_string(), wall)
    } else if libc::WIFSIGNALED(status) {
        (format!("CRASH signal {} ({})", libc::WTERMSIG(status), stderr_line), wall)
    } else if let Some(line) = stdout.lines().next() {
        let f: Vec<&str> = line.splitn(5, '\t').collect();
        if let (Ok(b), Ok(a)) = (f[2].parse::<i64>(), f[3].parse::<i64>()) {
            growth_kb = Some(a - b);
        }
        (format!("{}: {}", f[0], f.get(4).unwrap_or(&"")), f[1].parse().unwrap_or(wall))
    } else {
        (format!("exit {} ({stderr_line})", libc::WEXITSTATUS(status)), wall)
    };
    HostileResult { outcome, ms, maxrss_kb: ru.ru_maxrss, growth_kb }
}

/// Smallest fuel with which the typical reshape still succeeds.
#[cfg(feature = "minijinja")]
fn mj_fuel() {
    fn min_fuel<E: Eng>(mk: impl Fn(u64) -> E) -> u64 {
        let (mut lo, mut hi) = (1u64, 1_000_000u64);
        while lo < hi {
            let mid = (lo + hi) / 2;
            let e = mk(mid);
            let ok = e.compile(E::typical()).and_then(|c| e.eval(&c, &input())).is_ok();
            if ok { hi = mid } else { lo = mid + 1 }
        }
        lo
    }
    let env = |f: u64| {
        let mut e = mj::env();
        e.set_fuel(Some(f));
        e
    };
    println!("minijinja minimum fuel, typical expression: {}", min_fuel(|f| mj::Expr(env(f))));
    println!("minijinja minimum fuel, typical template: {}", min_fuel(|f| mj::Tpl(env(f))));
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() == 4 && args[1] == "hostile" {
        return child(args[2].clone(), args[3].clone());
    }
    #[cfg(feature = "minijinja")]
    if args.len() == 2 && args[1] == "fuel" {
        return mj_fuel();
    }
    let only = args.get(1).cloned();
    let hostile_all = only.as_deref() == Some("hostile-all");
    let only = if hostile_all { None } else { only };
    let want = |n: &str| !hostile_all && only.as_deref().is_none_or(|o| o == n || o == "bench");
    let mut rows = vec![];
    #[cfg(feature = "jaq")]
    if want("jaq") {
        rows.push(bench("jaq", &jaq::E, 200, 100_000));
    }
    #[cfg(feature = "minijinja")]
    if want("minijinja") {
        rows.push(bench("minijinja expression", &mj::Expr(mj::env()), 2_000, 100_000));
        rows.push(bench("minijinja template+tojson", &mj::Tpl(mj::env()), 2_000, 100_000));
    }
    #[cfg(feature = "rhai")]
    if want("rhai") {
        let t = Instant::now();
        let e = rh::engine();
        println!("rhai Engine setup (new_raw + StandardPackage + limits): {:.1} µs", t.elapsed().as_secs_f64() * 1e6);
        rows.push(bench("rhai", &rh::E(e), 2_000, 100_000));
    }
    #[cfg(feature = "quickjs")]
    if want("quickjs") {
        let t = Instant::now();
        let e = qjs::E::new(false);
        println!("quickjs Runtime+Context setup: {:.1} µs", t.elapsed().as_secs_f64() * 1e6);
        rows.push(bench("quickjs (shared Context)", &e, 2_000, 100_000));
        rows.push(bench("quickjs (fresh Context per eval)", &qjs::E::new(true), 200, 5_000));
    }
    if !hostile_all {
    println!();
    println!("| engine | 1st compile µs | compile µs (median of 5) | eval µs incl. conversion (median of 5) | output correct | key order | nothing |");
    println!("|---|---|---|---|---|---|---|");
    for r in &rows {
        println!(
            "| {} | {:.1} | {:.2} | {:.2} | {} | {} | {} |",
            r.name, r.first_compile_us, r.compile_us, r.eval_us, r.correct, r.order, r.nothing
        );
    }
    }
    println!();
    #[cfg(feature = "jaq")]
    if want("jaq") {
        big_field("jaq", &jaq::E);
    }
    #[cfg(feature = "minijinja")]
    if want("minijinja") {
        big_field("minijinja expression", &mj::Expr(mj::env()));
    }
    #[cfg(feature = "rhai")]
    if want("rhai") {
        big_field("rhai", &rh::E(rh::engine()));
    }
    #[cfg(feature = "quickjs")]
    if want("quickjs") {
        big_field("quickjs", &qjs::E::new(false));
    }
    if only.as_deref() == Some("bench") {
        return;
    }
    println!();
    // Run this part from a small parent (`hostile-all`): a child's ru_maxrss starts at the parent's RSS at fork.
    println!("| engine | case | outcome | ms to fail | peak RSS of child (MiB) | VmHWM growth in child (MiB; * = peak RSS over noop) |");
    println!("|---|---|---|---|---|---|");
    for eng in ENGINES {
        if only.as_deref().is_some_and(|o| o != *eng) {
            continue;
        }
        let mut base = 0;
        for case in CASES {
            let r = spawn_hostile(eng, case);
            if *case == "noop" {
                base = r.maxrss_kb;
            }
            println!(
                "| {eng} | {case} | {} | {:.1} | {:.1} | {} |",
                r.outcome.replace('|', "/"),
                r.ms,
                r.maxrss_kb as f64 / 1024.0,
                match r.growth_kb {
                    Some(g) => format!("{:.1}", g as f64 / 1024.0),
                    None => format!("{:.1}*", (r.maxrss_kb - base) as f64 / 1024.0),
                }
            );
        }
    }
}
