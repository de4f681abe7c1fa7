//! A SIEM collector for audit devices: a TCP listener that keeps the lines it receives.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A SIEM collector: a TCP listener on a free loopback port that keeps every line it
/// receives, from any number of connections.
pub struct Collector {
    pub addr: String,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Collector {
    pub fn start() -> Collector {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the collector");
        let addr = listener
            .local_addr()
            .expect("collector address")
            .to_string();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&lines);
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let sink = Arc::clone(&sink);
                std::thread::spawn(move || {
                    for line in BufReader::new(stream).lines() {
                        match line {
                            Ok(l) => sink.lock().unwrap().push(l),
                            Err(_) => break,
                        }
                    }
                });
            }
        });
        Collector { addr, lines }
    }

    pub fn count(&self) -> usize {
        self.lines.lock().unwrap().len()
    }

    /// The lines received after the first `from`, once `done` holds for them (or panics
    /// after 15 s).
    pub fn wait_since(&self, from: usize, done: impl Fn(&[String]) -> bool) -> Vec<String> {
        let start = Instant::now();
        loop {
            let got: Vec<String> = self.lines.lock().unwrap()[from..].to_vec();
            if done(&got) {
                return got;
            }
            if start.elapsed() > Duration::from_secs(15) {
                panic!(
                    "the collector did not receive the expected entries; got:\n{}",
                    got.join("\n")
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}
