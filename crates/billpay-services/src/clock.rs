//! The seams for time and randomness. Nothing else in billpay reads the wall clock or the
//! operating system's random source: tests drive both.

use std::sync::Mutex;

use jiff::Timestamp;

/// Where "now" comes from.
pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> Timestamp;

    /// Now, as microseconds since the Unix epoch (the store's unit).
    fn now_micros(&self) -> i64 {
        micros(self.now())
    }
}

/// The real clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    // This and ShiftedClock are the only places billpay reads the wall clock.
    #[allow(clippy::disallowed_methods)]
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }
}

/// A clock that only moves when told to: for tests and simulations.
#[derive(Debug)]
pub struct ManualClock(Mutex<Timestamp>);

impl ManualClock {
    pub fn new(start: Timestamp) -> Self {
        ManualClock(Mutex::new(start))
    }

    pub fn set(&self, to: Timestamp) {
        if let Ok(mut now) = self.0.lock() {
            *now = to;
        }
    }

    pub fn advance(&self, by: jiff::SignedDuration) {
        if let Ok(mut now) = self.0.lock()
            && let Ok(next) = now.checked_add(by)
        {
            *now = next;
        }
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        self.0.lock().map(|t| *t).unwrap_or(Timestamp::UNIX_EPOCH)
    }
}

pub fn micros(t: Timestamp) -> i64 {
    t.as_microsecond()
}

pub fn from_micros(us: i64) -> Timestamp {
    Timestamp::from_microsecond(us).unwrap_or(Timestamp::UNIX_EPOCH)
}

/// Where random bytes come from.
pub trait Random: Send + Sync + 'static {
    fn fill(&self, buf: &mut [u8]);

    fn next_u64(&self) -> u64 {
        let mut b = [0u8; 8];
        self.fill(&mut b);
        u64::from_le_bytes(b)
    }
}

/// The operating system's random source.
#[derive(Debug, Default, Clone, Copy)]
pub struct OsRandom;

impl Random for OsRandom {
    // The only place billpay asks the operating system for randomness.
    #[allow(clippy::disallowed_methods)]
    fn fill(&self, buf: &mut [u8]) {
        // getrandom only fails when the OS has no entropy source at all; billpay cannot run
        // safely then, and refusing to hand out predictable ids is the only honest answer.
        if let Err(e) = getrandom::fill(buf) {
            panic!("the operating system's random source failed: {e}");
        }
    }
}

/// A new identifier `prefix_<uuid v7>`: time-ordered, so indexes stay append-mostly.
pub fn new_id(prefix: &str, clock: &dyn Clock, random: &dyn Random) -> String {
    let mut bytes = [0u8; 10];
    random.fill(&mut bytes);
    let ms = clock.now().as_millisecond().max(0) as u64;
    let id = uuid::Builder::from_unix_timestamp_millis(ms, &bytes).into_uuid();
    format!("{prefix}_{}", id.simple())
}

/// The real clock moved by an adjustable offset: time passes as usual, and tests can jump
/// ahead (to age an in-doubt payment, or to reach a bank debit's settlement date).
#[derive(Debug, Default)]
pub struct ShiftedClock {
    offset_us: std::sync::atomic::AtomicI64,
}

impl ShiftedClock {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn advance(&self, by: jiff::SignedDuration) {
        self.offset_us.fetch_add(
            by.as_micros().clamp(i64::MIN as i128, i64::MAX as i128) as i64,
            std::sync::atomic::Ordering::SeqCst,
        );
    }
}

impl Clock for ShiftedClock {
    #[allow(clippy::disallowed_methods)]
    fn now(&self) -> Timestamp {
        let offset = self.offset_us.load(std::sync::atomic::Ordering::SeqCst);
        let now = Timestamp::now();
        now.checked_add(jiff::SignedDuration::from_micros(offset))
            .unwrap_or(now)
    }
}
