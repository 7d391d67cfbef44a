//! Where the time comes from: the system clock, or in tests one that moves only when told to.

use jiff::Timestamp;

/// Wall-clock time, for token claims and for counting failed logins.
pub trait Clock: Send + Sync {
    fn now(&self) -> Timestamp;
}

#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }
}

#[cfg(test)]
pub(crate) mod fake {
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use jiff::{SignedDuration, Timestamp};

    use super::Clock;

    pub(crate) struct FakeClock(Mutex<Timestamp>);

    impl FakeClock {
        /// A clock standing at 2024-06-01T12:00:00Z.
        pub(crate) fn new() -> Arc<Self> {
            Arc::new(Self(Mutex::new(
                Timestamp::from_second(1_717_243_200).unwrap(),
            )))
        }

        pub(crate) fn advance(&self, by: Duration) {
            let mut now = self.0.lock().unwrap();
            *now += SignedDuration::try_from(by).unwrap();
        }
    }

    impl Clock for FakeClock {
        fn now(&self) -> Timestamp {
            *self.0.lock().unwrap()
        }
    }
}
