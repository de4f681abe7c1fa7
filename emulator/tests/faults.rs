//! Fault injection through `/_emulator/faults` and the request log.

mod common;

use common::{Emu, V};
use reqwest::Method;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

#[test]
fn throttling_count_fraction_latency_drop_and_5xx() {
    let emu = Emu::start_with(&["--lro-polls", "0"]);
    let nv = json!({"properties": {"displayName": "a", "value": "b"}});
    let path = format!("{}/namedValues/a?{V}", emu.apim());

    emu.ctl(Method::POST, "faults", Some(&json!({"method": "PUT", "path": "*/namedValues/*", "status": 429, "retry_after": 1, "count": 2})));
    for _ in 0..2 {
        let r = emu.arm_req(Method::PUT, &path, Some(&nv), &[]);
        assert_eq!(r.status(), 429);
        assert_eq!(r.headers()["retry-after"], "1");
        assert!(r.headers().get("x-ms-request-id").is_some());
        assert_eq!(
            r.json::<Value>().expect("json")["error"]["code"],
            "TooManyRequests"
        );
    }
    // GETs do not match the rule; the third PUT goes through.
    assert_eq!(
        emu.arm_req(Method::GET, &format!("{}?{V}", emu.apim()), None, &[])
            .status(),
        200
    );
    assert_eq!(
        emu.arm_req(Method::PUT, &path, Some(&nv), &[]).status(),
        201
    );
    assert!(
        emu.ctl(Method::GET, "faults", None)
            .as_array()
            .is_some_and(Vec::is_empty),
        "exhausted rules disappear"
    );

    // fraction 1 applies always, 0 never; rules add up (latency + status).
    emu.ctl(
        Method::POST,
        "faults",
        Some(&json!({"path": "*/backends*", "status": 503, "fraction": 1.0})),
    );
    emu.ctl(
        Method::POST,
        "faults",
        Some(&json!({"path": "*/backends*", "status": 500, "fraction": 0.0})),
    );
    emu.ctl(
        Method::POST,
        "faults",
        Some(&json!({"method": "GET", "path": "*/backends*", "latency_ms": 300})),
    );
    let started = Instant::now();
    let r = emu.arm_req(
        Method::GET,
        &format!("{}/backends?{V}", emu.apim()),
        None,
        &[],
    );
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!(r.status(), 503);
    assert_eq!(
        r.json::<Value>().expect("json")["error"]["code"],
        "ServiceUnavailable"
    );
    emu.ctl(Method::DELETE, "faults", None);
    assert_eq!(
        emu.arm_req(
            Method::GET,
            &format!("{}/backends?{V}", emu.apim()),
            None,
            &[]
        )
        .status(),
        200
    );

    emu.ctl(
        Method::POST,
        "faults",
        Some(&json!({"path": "/metadata/*", "status": 500, "count": 1})),
    );
    let r = emu
        .http
        .get(format!(
            "{}/metadata/identity/oauth2/token?api-version=2018-02-01&resource=x",
            emu.url
        ))
        .header("Metadata", "true")
        .send()
        .expect("req");
    assert_eq!(r.status(), 500);

    // drop closes the connection without an answer.
    emu.ctl(
        Method::POST,
        "faults",
        Some(&json!({"path": "*/policies/*", "drop": true})),
    );
    let err = emu
        .http
        .get(format!("{}{}/policies/policy?{V}", emu.url, emu.apim()))
        .bearer_auth(emu.arm_token())
        .send();
    assert!(
        err.is_err(),
        "a dropped connection yields a transport error"
    );
    emu.ctl(Method::DELETE, "faults", None);

    // Invalid rules are refused.
    let r = emu
        .http
        .post(format!("{}/_emulator/faults", emu.url))
        .json(&json!({"path": "*"}))
        .send()
        .expect("req");
    assert_eq!(r.status(), 400);
    let r = emu
        .http
        .post(format!("{}/_emulator/faults", emu.url))
        .json(&json!({"status": 429, "fraction": 2}))
        .send()
        .expect("req");
    assert_eq!(r.status(), 400);

    // The request log has every request, faults marked, and no secrets.
    let log = emu.ctl(Method::GET, "requests", None);
    let entries = log.as_array().expect("array");
    assert!(entries
        .iter()
        .any(|e| e["status"] == 429 && e["method"] == "PUT"));
    assert!(entries
        .iter()
        .any(|e| e["status"] == 0 && e["fault"] == "drop"));
    let text = log.to_string();
    assert!(!text.contains(&emu.s("client_secret")));
    assert!(!text.contains(&emu.arm_token()));
}
