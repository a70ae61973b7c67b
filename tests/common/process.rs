//! The real `protogate` binary as a child process: killed when dropped, its
//! addresses read from its log lines.
//! Included by tests/common/mod.rs, and with `#[path]` by tests that need
//! only this.
#![allow(dead_code)]

use std::process::Child;

/// A child process killed (and reaped) when dropped, so a failing test
/// never leaves a gateway running.
pub struct KillOnDrop(pub Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The `host:port` after `marker` (e.g. `"listening on http://"`) in a log
/// line, pretty or JSON.
pub fn address_after(line: &str, marker: &str) -> Option<String> {
    let rest = &line[line.find(marker)? + marker.len()..];
    let addr = rest.split(['/', '"', ' ', '\t']).next()?;
    (!addr.is_empty()).then(|| addr.to_string())
}

/// Reads log lines until one names the main listener's address.
pub fn listening_address(lines: &mut impl Iterator<Item = std::io::Result<String>>) -> String {
    lines
        .map_while(Result::ok)
        .find_map(|l| address_after(&l, "listening on http://"))
        .expect("protogate exited before listening")
}
