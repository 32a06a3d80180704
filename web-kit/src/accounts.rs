//! Named officers and their password hashes (Argon2id), in a TOML file the consoles read and
//! a subcommand manages, and the lockout after repeated wrong passwords.
//!
//! The file holds hashes only and is written whole (a temporary file renamed over it, mode
//! 0600), so an interrupted change leaves the old file. A console reads it at every sign-in:
//! an officer added or removed takes effect without a restart.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use serde::{Deserialize, Serialize};

/// Wrong passwords in a row before an officer's sign-in is locked.
pub const LOCKOUT_AFTER: u32 = 5;
/// How long a lock lasts.
pub const LOCKOUT_FOR: Duration = Duration::from_secs(15 * 60);
/// Shortest password accepted when one is set.
pub const MIN_PASSWORD_CHARS: usize = 10;

#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error("cannot read the officers file {}: {reason}", path.display())]
    Read { path: PathBuf, reason: String },
    #[error("the officers file {} is not valid: {reason}", path.display())]
    Invalid { path: PathBuf, reason: String },
    #[error("cannot write the officers file {}: {reason}", path.display())]
    Write { path: PathBuf, reason: String },
    #[error("officer name {0:?} is not valid: use 1-32 lowercase letters, digits, '.', '-' or '_'")]
    BadName(String),
    #[error("officer {0} exists already; use `passwd` to change the password")]
    Exists(String),
    #[error("no officer {0} in the file")]
    NoSuchOfficer(String),
    #[error("the password is shorter than {MIN_PASSWORD_CHARS} characters")]
    WeakPassword,
    #[error("hashing the password failed: {0}")]
    Hash(String),
}

/// One officer as the file holds them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Officer {
    /// The sign-in name.
    pub name: String,
    /// The name colleagues read (on claims, notes, the audit log).
    #[serde(default)]
    pub display_name: String,
    /// Argon2id PHC string.
    pub password_hash: String,
}

impl Officer {
    /// How the officer is named on screens and in audit records: "display (name)".
    pub fn label(&self) -> String {
        if self.display_name.is_empty() || self.display_name == self.name {
            self.name.clone()
        } else {
            format!("{} ({})", self.display_name, self.name)
        }
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct OfficersFile {
    #[serde(default, rename = "officer")]
    officers: Vec<Officer>,
}

/// The officers file.
#[derive(Debug, Clone)]
pub struct Accounts {
    path: PathBuf,
}

fn valid_name(name: &str) -> bool {
    (1..=32).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '-' | '_'))
}

/// Hashes a password with Argon2id and a fresh salt.
pub fn hash_password(password: &str) -> Result<String, AccountError> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(AccountError::WeakPassword);
    }
    let salt = SaltString::generate(&mut rand_core::OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| AccountError::Hash(e.to_string()))
}

fn verify_password(hash: &str, password: &str) -> bool {
    PasswordHash::new(hash)
        .map(|parsed| {
            Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
        .unwrap_or(false)
}

impl Accounts {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Every officer (an absent file holds none).
    pub fn list(&self) -> Result<Vec<Officer>, AccountError> {
        Ok(self.read()?.officers)
    }

    fn read(&self) -> Result<OfficersFile, AccountError> {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(OfficersFile::default());
            }
            Err(e) => {
                return Err(AccountError::Read {
                    path: self.path.clone(),
                    reason: e.to_string(),
                });
            }
        };
        let file: OfficersFile = toml::from_str(&text).map_err(|e| AccountError::Invalid {
            path: self.path.clone(),
            reason: e.message().to_owned(),
        })?;
        for o in &file.officers {
            if !valid_name(&o.name) {
                return Err(AccountError::Invalid {
                    path: self.path.clone(),
                    reason: format!("officer name {:?} is not valid", o.name),
                });
            }
            if PasswordHash::new(&o.password_hash).is_err() {
                return Err(AccountError::Invalid {
                    path: self.path.clone(),
                    reason: format!("the password hash of {} is not a PHC string", o.name),
                });
            }
        }
        Ok(file)
    }

    fn write(&self, file: &OfficersFile) -> Result<(), AccountError> {
        let failed = |e: &dyn std::fmt::Display| AccountError::Write {
            path: self.path.clone(),
            reason: e.to_string(),
        };
        let text = toml::to_string_pretty(file).map_err(|e| failed(&e))?;
        let text = format!(
            "# Officers of this console. Managed by the `officers` subcommand: edit with it, \
             not by hand.\n\n{text}"
        );
        if let Some(dir) = self
            .path
            .parent()
            .filter(|d| !d.as_os_str().is_empty() && !d.exists())
        {
            let mut builder = std::fs::DirBuilder::new();
            builder.recursive(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::DirBuilderExt;
                builder.mode(0o700);
            }
            builder.create(dir).map_err(|e| failed(&e))?;
        }
        let tmp = self.path.with_extension("toml.tmp");
        {
            use std::io::Write;
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create(true).truncate(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt;
                options.mode(0o600);
            }
            let mut f = options.open(&tmp).map_err(|e| failed(&e))?;
            f.write_all(text.as_bytes()).map_err(|e| failed(&e))?;
            f.sync_all().map_err(|e| failed(&e))?;
        }
        std::fs::rename(&tmp, &self.path).map_err(|e| failed(&e))
    }

    /// Adds an officer.
    pub fn add(&self, name: &str, display_name: &str, password: &str) -> Result<(), AccountError> {
        if !valid_name(name) {
            return Err(AccountError::BadName(name.to_owned()));
        }
        let mut file = self.read()?;
        if file.officers.iter().any(|o| o.name == name) {
            return Err(AccountError::Exists(name.to_owned()));
        }
        file.officers.push(Officer {
            name: name.to_owned(),
            display_name: display_name.trim().to_owned(),
            password_hash: hash_password(password)?,
        });
        self.write(&file)
    }

    /// Sets an officer's password.
    pub fn set_password(&self, name: &str, password: &str) -> Result<(), AccountError> {
        let mut file = self.read()?;
        let hash = hash_password(password)?;
        let officer = file
            .officers
            .iter_mut()
            .find(|o| o.name == name)
            .ok_or_else(|| AccountError::NoSuchOfficer(name.to_owned()))?;
        officer.password_hash = hash;
        self.write(&file)
    }

    /// Removes an officer (their open sessions end at their next request).
    pub fn remove(&self, name: &str) -> Result<(), AccountError> {
        let mut file = self.read()?;
        let before = file.officers.len();
        file.officers.retain(|o| o.name != name);
        if file.officers.len() == before {
            return Err(AccountError::NoSuchOfficer(name.to_owned()));
        }
        self.write(&file)
    }

    /// The officer named `name`, if the file still holds them.
    pub fn officer(&self, name: &str) -> Result<Option<Officer>, AccountError> {
        Ok(self.read()?.officers.into_iter().find(|o| o.name == name))
    }
}

/// Why a sign-in was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignInRefused {
    /// Wrong name or password (never which of the two).
    Wrong,
    /// Too many wrong passwords: try again after this long.
    Locked(Duration),
    /// The officers file cannot be read.
    Unavailable(String),
}

/// Sign-in with lockout: after [`LOCKOUT_AFTER`] wrong passwords in a row for a name, that
/// name is refused for [`LOCKOUT_FOR`], right password or not.
#[derive(Debug, Default)]
pub struct SignIn {
    failures: Mutex<HashMap<String, (u32, Option<Instant>)>>,
}

impl SignIn {
    pub fn attempt(
        &self,
        accounts: &Accounts,
        name: &str,
        password: &str,
    ) -> Result<Officer, SignInRefused> {
        let name = name.trim();
        if let Some(left) = self.locked_for(name) {
            return Err(SignInRefused::Locked(left));
        }
        let officer = accounts
            .officer(name)
            .map_err(|e| SignInRefused::Unavailable(e.to_string()))?;
        // An unknown name costs a hash too, so timing does not tell names apart.
        let ok = match &officer {
            Some(o) => verify_password(&o.password_hash, password),
            None => {
                let _ = verify_password(dummy_hash(), password);
                false
            }
        };
        let mut failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        match officer {
            Some(o) if ok => {
                failures.remove(name);
                Ok(o)
            }
            _ => {
                let entry = failures.entry(name.to_owned()).or_insert((0, None));
                entry.0 += 1;
                if entry.0 >= LOCKOUT_AFTER {
                    entry.1 = Some(Instant::now() + LOCKOUT_FOR);
                    tracing::warn!(officer = name, "sign-in locked after repeated failures");
                }
                Err(SignInRefused::Wrong)
            }
        }
    }

    fn locked_for(&self, name: &str) -> Option<Duration> {
        let mut failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        let (_, until) = failures.get(name)?;
        let until = (*until)?;
        let now = Instant::now();
        if until > now {
            Some(until - now)
        } else {
            failures.remove(name);
            None
        }
    }
}

fn dummy_hash() -> &'static str {
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HASH.get_or_init(|| hash_password("not the password of anyone").unwrap_or_default())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn officers_are_added_changed_and_removed_and_only_hashes_are_kept() {
        let dir = tempfile::tempdir().unwrap();
        let accounts = Accounts::new(dir.path().join("officers.toml"));
        accounts
            .add("liwei", "李伟", "correct horse battery")
            .unwrap();
        let text = std::fs::read_to_string(accounts.path()).unwrap();
        assert!(!text.contains("correct horse"), "{text}");
        assert!(text.contains("$argon2id$"), "{text}");
        assert!(matches!(
            accounts.add("liwei", "", "another password"),
            Err(AccountError::Exists(_))
        ));
        assert!(matches!(
            accounts.add("Li Wei", "", "another password"),
            Err(AccountError::BadName(_))
        ));
        assert!(matches!(
            accounts.add("wangfang", "", "short"),
            Err(AccountError::WeakPassword)
        ));
        let sign_in = SignIn::default();
        let o = sign_in
            .attempt(&accounts, "liwei", "correct horse battery")
            .unwrap();
        assert_eq!(o.label(), "李伟 (liwei)");
        accounts
            .set_password("liwei", "a new long password")
            .unwrap();
        assert_eq!(
            sign_in.attempt(&accounts, "liwei", "correct horse battery"),
            Err(SignInRefused::Wrong)
        );
        accounts.remove("liwei").unwrap();
        assert!(matches!(
            accounts.remove("liwei"),
            Err(AccountError::NoSuchOfficer(_))
        ));
        assert_eq!(
            sign_in.attempt(&accounts, "liwei", "a new long password"),
            Err(SignInRefused::Wrong)
        );
    }

    #[test]
    fn repeated_failures_lock_the_name_even_for_the_right_password() {
        let dir = tempfile::tempdir().unwrap();
        let accounts = Accounts::new(dir.path().join("officers.toml"));
        accounts.add("liwei", "", "correct horse battery").unwrap();
        let sign_in = SignIn::default();
        for _ in 0..LOCKOUT_AFTER {
            assert_eq!(
                sign_in.attempt(&accounts, "liwei", "guess"),
                Err(SignInRefused::Wrong)
            );
        }
        assert!(matches!(
            sign_in.attempt(&accounts, "liwei", "correct horse battery"),
            Err(SignInRefused::Locked(_))
        ));
    }

    #[test]
    fn a_damaged_file_is_refused_with_its_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("officers.toml");
        std::fs::write(
            &path,
            "[[officer]]\nname = \"x\"\npassword_hash = \"plain\"\n",
        )
        .unwrap();
        let err = Accounts::new(&path).list().unwrap_err().to_string();
        assert!(
            err.contains("officers.toml") && err.contains("PHC"),
            "{err}"
        );
    }
}
