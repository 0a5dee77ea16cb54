//! Rate limits: how many requests of one kind a client address may make in a window (quick-pay
//! lookups, sign-ins, codes, reset requests, enrolments), counted in the database so that
//! every instance behind a load balancer shares the count. Windows are fixed (they start at
//! multiples of their length); a window's counters are relaxed state, like a call in
//! progress. Per-account lockouts (wrong passwords, codes) are separate and stricter.

use std::net::IpAddr;
use std::sync::atomic::{AtomicI64, Ordering};

use billpay_store::limits as q;
use jiff::SignedDuration;

use crate::{Billpay, ServiceError};

/// One limit: at most `max` requests per `window` from one client address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limit {
    pub max: i64,
    pub window: SignedDuration,
}

/// The portal's limits per client address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PortalLimits {
    /// Quick-pay account lookups (account number and ZIP).
    pub lookup: Limit,
    /// Sign-ins (email and password).
    pub signin: Limit,
    /// One-time codes and security answers entered.
    pub code: Limit,
    /// Password reset requests.
    pub reset: Limit,
    /// Online account enrolments.
    pub enrol: Limit,
}

impl Default for PortalLimits {
    fn default() -> Self {
        let per_15_min = |max| Limit {
            max,
            window: SignedDuration::from_mins(15),
        };
        PortalLimits {
            lookup: per_15_min(30),
            signin: per_15_min(20),
            code: per_15_min(30),
            reset: per_15_min(10),
            enrol: per_15_min(10),
        }
    }
}

/// What a limit is counted against: an IPv4 address, or an IPv6 address's /64 (one home or
/// phone gets a whole /64, so counting single IPv6 addresses would count nothing).
pub fn client_key(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
    }
}

/// When counters were last pruned (microseconds), per process.
static LAST_PRUNE: AtomicI64 = AtomicI64::new(0);
/// Counters are kept this long after their window started.
const KEEP: SignedDuration = SignedDuration::from_hours(24);

impl Billpay {
    /// Counts a request of kind `name` from `client` against `limit`. None: go ahead. Some:
    /// over the limit; the request is refused and may be tried again after that long.
    pub async fn rate_limit(
        &self,
        name: &str,
        client: &str,
        limit: Limit,
    ) -> Result<Option<SignedDuration>, ServiceError> {
        let now = self.clock.now_micros();
        let len = limit.window.as_micros().max(1) as i64;
        let window_start = now - now.rem_euclid(len);
        let key = format!("{name}:{client}");
        let hits = self
            .store
            .write_relaxed(move |c| Box::pin(async move { q::hit(c, &key, window_start).await }))
            .await?;
        if hits > limit.max {
            metrics::counter!("billpay_rate_limited_total", "limit" => name.to_string())
                .increment(1);
            if hits == limit.max + 1 {
                tracing::warn!(limit = name, client, "rate limit reached");
            }
            let left = window_start + len - now;
            return Ok(Some(SignedDuration::from_micros(left.max(1_000_000))));
        }
        Ok(None)
    }

    /// Drops counters of windows long past, at most once a minute per process. Returns how
    /// many.
    pub async fn prune_rate_limits(&self) -> Result<u64, ServiceError> {
        let now = self.clock.now_micros();
        let last = LAST_PRUNE.load(Ordering::Relaxed);
        if now - last < SignedDuration::from_mins(1).as_micros() as i64
            || LAST_PRUNE
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            return Ok(0);
        }
        let before = now - KEEP.as_micros() as i64;
        let counters = self
            .store
            .write_relaxed(move |c| Box::pin(async move { q::prune(c, before).await }))
            .await?;
        let failures = self
            .store
            .write(move |c| Box::pin(async move { q::prune_unknown_signins(c, before).await }))
            .await?;
        Ok(counters + failures)
    }

    /// A failed sign-in with an address that has none (`realm`: "portal" or "staff"): counted
    /// and locked like a real one's (`lock_at` failures, then `lock` long), so neither the
    /// answer, nor its time, nor the lockout tells a stranger which addresses exist. Returns
    /// when it is locked until, if it is now (this attempt is then not counted).
    pub(crate) async fn unknown_signin_failed(
        &self,
        realm: &str,
        email: &str,
        lock_at: i64,
        lock: SignedDuration,
    ) -> Result<Option<i64>, ServiceError> {
        use sha2::{Digest, Sha256};
        let key = format!("{realm}:{}", hex::encode(Sha256::digest(email.as_bytes())));
        let now = self.clock.now_micros();
        let locked = {
            let mut c = self.store.read_conn().await?;
            q::unknown_signin_lock(&mut c, &key).await?
        };
        if let Some(until) = locked.filter(|u| *u > now) {
            return Ok(Some(until));
        }
        let lock_until = now + lock.as_micros() as i64;
        self.store
            .write(move |c| {
                Box::pin(async move {
                    q::record_unknown_signin(c, &key, lock_at, lock_until, now).await
                })
            })
            .await?;
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::client_key;

    #[test]
    fn clients_are_addresses_or_ipv6_prefixes() {
        assert_eq!(client_key("203.0.113.9".parse().unwrap()), "203.0.113.9");
        assert_eq!(
            client_key("2001:db8:1:2:aaaa::1".parse().unwrap()),
            "2001:db8:1:2::/64"
        );
        assert_eq!(
            client_key("2001:db8:1:2:bbbb::7".parse().unwrap()),
            "2001:db8:1:2::/64"
        );
        assert_eq!(
            client_key("::ffff:198.51.100.4".parse().unwrap()),
            "198.51.100.4"
        );
    }
}
