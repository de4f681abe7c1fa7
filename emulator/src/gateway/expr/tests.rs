//! End-to-end tests of the expression language: compile (with the binder's checks) and run.

use super::value::Val;
use super::{compile, run};
use crate::gateway::context::{BodyCell, Ctx, HttpResponse, LastError, Matched, Url};
use std::sync::Arc;

fn ctx() -> Ctx {
    let url = Url::parse("http://gw/orders/42?x=1&x=2").expect("url");
    let mut c = Ctx::new(
        "POST",
        url,
        vec![
            ("Content-Type".into(), "application/json".into()),
            ("X-A".into(), "1".into()),
        ],
        br#"{"a":{"b":"c"}}"#.to_vec(),
        "127.0.0.1".into(),
        Matched {
            service_name: "apim1".into(),
            api_id: "orders".into(),
            api_path: "orders".into(),
            ..Matched::default()
        },
    );
    c.variables.insert("s".into(), Val::Str("text".into()));
    c.variables.insert("n".into(), Val::Int(7));
    c.variables.insert(
        "r".into(),
        Val::Response(Arc::new(HttpResponse {
            status: 200,
            reason: "OK".into(),
            headers: vec![("Content-Type".into(), "application/json".into())],
            body: BodyCell::new(
                br#"{"auth":{"client_token":"t0k"},"data":{"data":{"k":"v","n":null}}}"#.to_vec(),
            ),
        })),
    );
    c
}

fn ok(src: &str) -> String {
    let c = compile(src).unwrap_or_else(|e| panic!("{src}: {e}"));
    run(&c, &ctx())
        .unwrap_or_else(|e| panic!("{src}: {}", e.message))
        .to_text()
}

fn runtime_err(src: &str) -> String {
    let c = compile(src).unwrap_or_else(|e| panic!("{src}: {e}"));
    run(&c, &ctx()).expect_err(src).message
}

fn compile_err(src: &str) -> String {
    compile(src).expect_err(src)
}

#[test]
fn literals_and_operators() {
    assert_eq!(ok("@(1 + 2 * 3)"), "7");
    assert_eq!(ok("@(7 / 2)"), "3");
    assert_eq!(ok("@(7 / 2.0)"), "3.5");
    assert_eq!(ok("@(10L - 3)"), "7");
    assert_eq!(ok("@(\"a\" + 1 + true)"), "a1True");
    assert_eq!(ok("@(@\"c:\\x\"\"y\")"), "c:\\x\"y");
    assert_eq!(ok("@(1 < 2 && !(3 >= 4) || false)"), "True");
    assert_eq!(ok("@(null ?? \"d\")"), "d");
    assert_eq!(ok("@(2 > 1 ? \"y\" : \"n\")"), "y");
    assert_eq!(ok("@(\"ab\" == \"a\" + \"b\")"), "True");
    assert_eq!(ok("@($\"n={1 + 1}!\")"), "n=2!");
    assert_eq!(ok("@(-(3) % 2)"), "-1");
    assert_eq!(
        runtime_err("@(1 / (1 - 1))"),
        "Attempted to divide by zero."
    );
}

#[test]
fn context_members() {
    assert_eq!(ok("@(context.Request.Method)"), "POST");
    assert_eq!(ok("@(context.Request.Url.Path)"), "/orders/42");
    assert_eq!(
        ok("@(context.Request.Url.Query.GetValueOrDefault(\"x\", \"\"))"),
        "1,2"
    );
    assert_eq!(
        ok("@(context.Request.Headers.GetValueOrDefault(\"x-a\", \"none\"))"),
        "1"
    );
    assert_eq!(
        ok("@(context.Request.Headers.GetValueOrDefault(\"x-b\", \"none\"))"),
        "none"
    );
    assert_eq!(ok("@(context.Deployment.ServiceName)"), "apim1");
    assert_eq!(ok("@(context.Api.Path)"), "orders");
    assert_eq!(
        ok("@(context.Request.Body.As<JObject>(preserveContent: true)[\"a\"][\"b\"].ToString())"),
        "c"
    );
    assert_eq!(
        runtime_err("@(context.LastError.Source)"),
        "Object reference not set to an instance of an object."
    );
    let mut c = ctx();
    c.last_error = Some(LastError {
        reason: "ExpressionValueEvaluationFailure".into(),
        ..LastError::default()
    });
    let p = compile("@(context.LastError.Reason)").expect("compile");
    assert_eq!(
        run(&p, &c).expect("run").to_text(),
        "ExpressionValueEvaluationFailure"
    );
}

#[test]
fn variables_and_casts() {
    assert_eq!(ok("@(context.Variables.ContainsKey(\"s\"))"), "True");
    assert_eq!(ok("@((string)context.Variables[\"s\"])"), "text");
    assert_eq!(ok("@(((string)context.Variables[\"s\"]).Length)"), "4");
    assert_eq!(ok("@((int)context.Variables[\"n\"] + 1)"), "8");
    assert_eq!(
        ok("@(context.Variables.GetValueOrDefault<int>(\"n\"))"),
        "7"
    );
    assert_eq!(
        ok("@(context.Variables.GetValueOrDefault(\"missing\", \"dflt\"))"),
        "dflt"
    );
    assert_eq!(
        ok("@(context.Variables.GetValueOrDefault(\"missing\") == null)"),
        "True"
    );
    assert!(
        runtime_err("@(context.Variables.GetValueOrDefault<string>(\"n\"))")
            .contains("Unable to cast object of type 'System.Int32' to type 'System.String'")
    );
    assert!(runtime_err("@((long)context.Variables[\"n\"])").contains("Unable to cast"));
    assert!(runtime_err("@(context.Variables[\"missing\"])")
        .contains("The given key 'missing' was not present"));
    assert_eq!(ok("@((long)(int)context.Variables[\"n\"])"), "7");
}

#[test]
fn responses_and_json() {
    let login = "((IResponse)context.Variables[\"r\"])";
    assert_eq!(ok(&format!("@({login}.StatusCode == 200)")), "True");
    assert_eq!(
        ok(&format!(
            "@({login}.Headers.GetValueOrDefault(\"content-type\", \"\"))"
        )),
        "application/json"
    );
    assert_eq!(
        ok(&format!(
            "@({login}.Body.As<JObject>()[\"auth\"][\"client_token\"].ToString())"
        )),
        "t0k"
    );
    assert_eq!(ok(&format!("@({login}.Body.As<JObject>(preserveContent: true)[\"data\"][\"data\"].Value<string>(\"k\"))")), "v");
    assert_eq!(
        ok(&format!(
            "@({login}.Body.As<JObject>(preserveContent: true)[\"data\"][\"data\"][\"n\"] != null)"
        )),
        "True"
    );
    assert_eq!(
        ok(&format!(
            "@({login}.Body.As<JObject>(preserveContent: true)[\"nope\"] == null)"
        )),
        "True"
    );
    assert_eq!(
        runtime_err(&format!(
            "@({login}.Body.As<JObject>()[\"auth\"][\"client_token\"][\"x\"])"
        )),
        "Cannot access child value on Newtonsoft.Json.Linq.JValue."
    );
    assert_eq!(
        ok("@(JObject.Parse(\"{\\\"a\\\":1}\").Value<int>(\"a\") + 1)"),
        "2"
    );
    assert_eq!(
        ok("@(new JObject(new JProperty(\"role\", \"r\"), new JProperty(\"n\", 1)).ToString())"),
        "{\r\n  \"role\": \"r\",\r\n  \"n\": 1\r\n}"
    );
    assert_eq!(
        ok("@(JsonConvert.SerializeObject(new JObject(new JProperty(\"jwt\", \"a\\\"b\"))))"),
        "{\"jwt\":\"a\\\"b\"}"
    );
    assert_eq!(ok("@(JsonConvert.SerializeObject(\"x\"))"), "\"x\"");
    assert_eq!(
        ok("@((string)JObject.Parse(\"{\\\"a\\\":\\\"s\\\"}\")[\"a\"])"),
        "s"
    );
    assert!(runtime_err("@(JObject.Parse(\"[1]\"))").contains("not an object"));
    assert!(runtime_err("@((JObject)JToken.Parse(\"[1]\"))").contains("Unable to cast"));
}

#[test]
fn a_body_is_read_once_unless_preserved() {
    let c = ctx();
    let read =
        compile("@(((IResponse)context.Variables[\"r\"]).Body.As<string>())").expect("compile");
    assert!(run(&read, &c).expect("first").to_text().contains("t0k"));
    assert_eq!(run(&read, &c).expect("second").to_text(), "");
}

#[test]
fn strings_math_and_statics() {
    assert_eq!(ok("@(string.IsNullOrEmpty(\"\"))"), "True");
    assert_eq!(ok("@(String.Concat(\"a\", 1, null, \"b\"))"), "a1b");
    assert_eq!(ok("@(Uri.EscapeDataString(\"a b/c\"))"), "a%20b%2Fc");
    assert_eq!(ok("@(Math.Max(3, 4L))"), "4");
    assert_eq!(ok("@(Math.Min(1.5, 2))"), "1.5");
    assert_eq!(
        ok("@(\"abc\".Contains(\"b\") && \"abc\".StartsWith(\"a\"))"),
        "True"
    );
    assert_eq!(ok("@(\"abcd\".Substring(1, 2).ToUpper())"), "BC");
    assert_eq!(ok("@(int.Parse(\"41\") + 1)"), "42");
    assert_eq!(ok("@(string.Empty.Length)"), "0");
}

#[test]
fn blocks_with_locals() {
    assert_eq!(
        ok("@{ var t = (string)context.Variables[\"s\"]; string u; if (t.Length > 3) { u = t + \"!\"; } else { u = \"short\"; } return u; }"),
        "text!"
    );
    assert_eq!(ok("@{ int a = 1; long b = a + 1; return b * 2; }"), "4");
    assert_eq!(ok("@{ if (true) return \"a\"; else return \"b\"; }"), "a");
}

#[test]
fn utc_now_counts_ticks_from_year_one() {
    let secs: i64 = ok("@(DateTime.UtcNow.Ticks / 10000000)")
        .parse()
        .expect("a number");
    let unix = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    // 62,135,596,800 seconds from 0001-01-01 to 1970-01-01.
    let unix = i64::try_from(unix).expect("fits") + 62_135_596_800;
    assert!((secs - unix).abs() <= 2, "{secs} vs {unix}");
    assert_eq!(
        ok("@(DateTime.UtcNow.Ticks > 0L ? \"later\" : \"earlier\")"),
        "later"
    );
    assert!(compile_err("@(DateTime.UtcNow.ToString())").contains("does not implement"));
    assert!(compile_err("@(DateTime.UtcNow + 1)").contains("cannot be applied"));
    // Made text another way, its text is the culture's all the same.
    for src in [
        "@(\"at \" + DateTime.UtcNow)",
        "@(DateTime.UtcNow + \"\")",
        "@($\"at {DateTime.UtcNow}\")",
        "@(string.Concat(\"at \", DateTime.UtcNow))",
        "@(string.Join(\",\", DateTime.UtcNow, 1))",
    ] {
        assert!(compile_err(src).contains("culture"), "{src}");
    }
    assert_eq!(ok("@(\"\" + (DateTime.UtcNow.Ticks > 0L))"), "True");
}

#[test]
fn compile_errors_name_the_problem() {
    for (src, want) in [
        (
            "@(System.IO.File.ReadAllText(\"x\"))",
            "The type 'System.IO.File' is not allowed",
        ),
        (
            "@(JsonConvert.PopulateObject(\"a\", null))",
            "The member 'Newtonsoft.Json.JsonConvert.PopulateObject' is not allowed",
        ),
        ("@(DateTime.Now)", "does not implement"),
        (
            "@(context.Variables[\"s\"].Length)",
            "'object' does not contain a definition for 'Length'",
        ),
        (
            "@(context.Request.Nope)",
            "does not contain a definition for 'Nope'",
        ),
        ("@(context.Operation)", "does not implement"),
        ("@(nope)", "The name 'nope' does not exist"),
        ("@(1 + true)", "Operator '+' cannot be applied"),
        (
            "@(context.Variables[\"s\"] == \"x\")",
            "compares references",
        ),
        ("@{ var a = 1; }", "Not all code paths return a value"),
        (
            "@{ string s = context.Variables[\"s\"]; return s; }",
            "Cannot implicitly convert type 'object' to 'string'",
        ),
        ("@(x => x)", "lambda"),
        (
            "@((DateTimeOffset)context.Variables[\"s\"])",
            "does not implement",
        ),
        ("@(new Random())", "does not implement"),
        ("@(\"a\".Split(','))", "does not implement"),
        ("@(context.Request.Headers[\"a\"])", "does not implement"),
    ] {
        let e = compile_err(src);
        assert!(e.contains(want), "{src}: {e}");
    }
}

mod lexer {
    use crate::gateway::expr::lexer::{lex, Part, Tok};

    fn toks(s: &str) -> Vec<Tok> {
        lex(s).expect("lex").into_iter().map(|t| t.tok).collect()
    }

    #[test]
    fn literals_and_punctuation() {
        assert_eq!(
            toks(r#"a.b("x\"y", @"c""d", 'q', 12, 3L, 1.5, 2e1, 0x1F) ?? !z"#),
            vec![
                Tok::Ident("a".into()),
                Tok::Punct("."),
                Tok::Ident("b".into()),
                Tok::Punct("("),
                Tok::Str("x\"y".into()),
                Tok::Punct(","),
                Tok::Str("c\"d".into()),
                Tok::Punct(","),
                Tok::Char('q'),
                Tok::Punct(","),
                Tok::Int(12, false),
                Tok::Punct(","),
                Tok::Int(3, true),
                Tok::Punct(","),
                Tok::Real(1.5),
                Tok::Punct(","),
                Tok::Real(20.0),
                Tok::Punct(","),
                Tok::Int(31, false),
                Tok::Punct(")"),
                Tok::Punct("??"),
                Tok::Punct("!"),
                Tok::Ident("z".into()),
                Tok::Eof,
            ]
        );
    }

    #[test]
    fn interpolation_and_errors() {
        assert_eq!(
            toks(r#"$"a{x["k"]}b{{c}}""#),
            vec![
                Tok::Interp(vec![
                    Part::Text("a".into()),
                    Part::Hole("x[\"k\"]".into()),
                    Part::Text("b{c}".into()),
                ]),
                Tok::Eof
            ]
        );
        assert!(lex("\"open").is_err());
        assert!(lex("'ab'").is_err());
        assert!(lex("1m").unwrap_err().contains("decimal"));
        assert!(lex("a # b").is_err());
        assert_eq!(toks("// c\n1 /* d */"), vec![Tok::Int(1, false), Tok::Eof]);
    }
}
