//! The scripts of `deploy/local/` as tests run them: free consecutive ports, the script with
//! the workspace's binaries, and `deconflict` against one of its agencies.

use std::path::Path;
use std::process::Command;

/// `n` consecutive free loopback ports; the first.
pub fn free_base(n: u16) -> u16 {
    for _ in 0..50 {
        let base = crate::free_port();
        if base < 65_000
            && (1..n).all(|i| std::net::TcpListener::bind(("127.0.0.1", base + i)).is_ok())
        {
            return base;
        }
    }
    panic!("no {n} consecutive free ports");
}

/// Runs `deploy/local/<name>` with `args` on ports from `base`: (success, stdout + stderr).
pub fn script(name: &str, args: &[&str], base: u16) -> (bool, String) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let out = Command::new("bash")
        .arg(root.join("deploy/local").join(name))
        .args(args)
        .env("BIN_DIR", crate::deconflict_binary().parent().unwrap())
        .env("BASE_PORT", base.to_string())
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

/// Runs `deconflict` against the agencyd of `agency` in a script's folder `dir`.
pub fn deconflict(dir: &Path, agency: &str, args: &[&str]) -> (bool, String) {
    let out = Command::new(crate::deconflict_binary())
        .args(args)
        .env(
            "DECONFLICT_SOCKET",
            dir.join(agency).join("data/agencyd.sock"),
        )
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

/// Stops the script's processes when dropped, however the test ends.
pub struct StopOnDrop<'a> {
    pub script: &'static str,
    pub dir: &'a str,
    pub base: u16,
}

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        let _ = script(self.script, &["stop", self.dir], self.base);
    }
}
