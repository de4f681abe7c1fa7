//! The Azure-speed profile: ARM requests wait their operation's latency, and a principal that
//! empties its bucket is answered 429 with a `Retry-After`, as ARM's throttling does.

mod common;

use std::time::Instant;

use common::{Emu, V};
use reqwest::Method;
use serde_json::json;

#[test]
fn off_by_default_on_by_flag_or_control_plane() {
    let emu = Emu::start();
    assert_eq!(emu.ctl(Method::GET, "profile", None)["enabled"], false);
    let on = Emu::start_with(&["--profile", "azure"]);
    let p = on.ctl(Method::GET, "profile", None);
    assert_eq!(p["enabled"], true);
    assert_eq!(p["policy_write_ms"], 1000);
    assert_eq!(
        (p["read_bucket"].as_u64(), p["read_refill"].as_u64()),
        (Some(250), Some(25))
    );
    assert_eq!(
        (p["write_bucket"].as_u64(), p["write_refill"].as_u64()),
        (Some(200), Some(10))
    );
    // Long-running writes poll twice, 2 s apart.
    let lro = on.ctl(Method::GET, "lro", None);
    assert_eq!(
        (lro["polls"].as_u64(), lro["retry_after"].as_u64()),
        (Some(2), Some(2))
    );
}

#[test]
fn requests_wait_their_latency_and_an_empty_bucket_answers_429_with_retry_after() {
    let emu = Emu::start();
    let api = format!("{}/apis/echo?{V}", emu.apim());
    emu.ctl(
        Method::PUT,
        "profile",
        Some(&json!({"profile": "azure", "read_ms": 300, "read_bucket": 3, "read_refill": 1})),
    );
    let started = Instant::now();
    let (status, _, _) = emu.arm(Method::GET, &api, None, &[]);
    assert_eq!(status, 404, "the API does not exist, but the answer came");
    assert!(
        started.elapsed().as_millis() >= 300,
        "a read waits read_ms before it is answered"
    );
    emu.arm(Method::GET, &api, None, &[]);
    emu.arm(Method::GET, &api, None, &[]);
    // The fourth read within a second: the bucket of 3 is empty.
    let resp = emu.arm_req(Method::GET, &api, None, &[]);
    assert_eq!(resp.status(), 429);
    let retry: u64 = resp.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=2).contains(&retry), "Retry-After {retry}");
    let body: serde_json::Value = resp.json().unwrap();
    assert_eq!(body["error"]["code"], "TooManyRequests");
    // The control plane is never slowed nor throttled; `none` turns the profile off.
    emu.ctl(Method::PUT, "profile", Some(&json!({"profile": "none"})));
    let (status, _, _) = emu.arm(Method::GET, &api, None, &[]);
    assert_eq!(status, 404);
}
