//! Secret values that never print themselves.

use std::fmt;

/// A string secret (card number, CVC, bank account number, key, password, code).
/// Debug and Display print `[REDACTED]`. Zeroized on drop. The only way to the
/// value is `expose_secret()`.
#[derive(Clone, zeroize::ZeroizeOnDrop)]
pub struct SecretString(String);

impl SecretString {
    /// Wraps `s`; from now on it is only reachable through
    /// [`SecretString::expose_secret`].
    pub fn new(s: String) -> Self {
        SecretString(s)
    }

    /// The secret value. Call only where the value is really needed, and never
    /// log the result.
    pub fn expose_secret(&self) -> &str {
        &self.0
    }

    /// Length of the secret in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the secret is the empty string.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<String> for SecretString {
    fn from(s: String) -> Self {
        SecretString::new(s)
    }
}

impl From<&str> for SecretString {
    fn from(s: &str) -> Self {
        SecretString::new(s.to_owned())
    }
}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[REDACTED]")
    }
}

impl fmt::Display for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[REDACTED]")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_prints_the_secret() {
        let s = SecretString::from("hunter2-very-secret");
        assert_eq!(format!("{s:?}"), "[REDACTED]");
        assert_eq!(format!("{s:#?}"), "[REDACTED]");
        assert_eq!(s.to_string(), "[REDACTED]");
        assert!(!format!("{:?}", Some(s.clone())).contains("hunter2"));
        assert_eq!(s.expose_secret(), "hunter2-very-secret");
        assert_eq!(s.len(), 19);
        assert!(!s.is_empty());
        assert!(SecretString::new(String::new()).is_empty());
        assert_eq!(SecretString::from(String::from("x")).expose_secret(), "x");
    }
}
