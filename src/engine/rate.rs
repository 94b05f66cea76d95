//! Per-thread pacing: keeps the count sent equal to `rate × elapsed`, so the long-run rate is
//! exact whatever the batch sizes, and sleeps rather than spins when far ahead.

use std::time::{Duration, Instant};

/// Waits shorter than this are spun; longer ones sleep.
const SPIN_BELOW: f64 = 5e-6;

#[derive(Debug)]
pub(crate) struct RateLimiter {
    /// Probes per second; 0 = unlimited.
    rate: f64,
    start: Instant,
    sent: u64,
}

impl RateLimiter {
    pub(crate) fn new(rate: f64) -> Self {
        Self {
            rate,
            start: Instant::now(),
            sent: 0,
        }
    }

    /// How many probes may go now (at least 1, at most `max`), waiting first if needed.
    /// Returns 0 only if `stop()` says to give up while waiting.
    #[inline]
    pub(crate) fn allowance(&mut self, max: usize, stop: impl Fn() -> bool) -> usize {
        if self.rate <= 0.0 {
            return max;
        }
        loop {
            let due = (self.start.elapsed().as_secs_f64() * self.rate) as u64 + 1;
            if due > self.sent {
                return ((due - self.sent) as usize).min(max);
            }
            if stop() {
                return 0;
            }
            // Sleep whenever the next probe is more than a few microseconds away: the count is
            // kept against the clock, so oversleeping turns into a short burst, not a slower
            // rate, and the core stays free for the receive thread and the kernel.
            let wait = (self.sent + 1 - due) as f64 / self.rate;
            if wait > SPIN_BELOW {
                std::thread::sleep(Duration::from_secs_f64(wait.min(0.05)));
            } else {
                std::hint::spin_loop();
            }
        }
    }

    /// Counts from now, at the same rate.
    #[inline]
    pub(crate) fn restart(&mut self) {
        *self = Self::new(self.rate);
    }

    /// Moves to a new rate (0 = unlimited), counting from now.
    #[inline]
    pub(crate) fn retarget(&mut self, rate: f64) {
        if rate != self.rate {
            *self = Self::new(rate);
        }
    }

    #[inline]
    pub(crate) fn sent(&mut self, n: usize) {
        self.sent += n as u64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unlimited_gives_everything() {
        let mut r = RateLimiter::new(0.0);
        assert_eq!(r.allowance(64, || false), 64);
    }

    #[test]
    fn paces_to_rate() {
        // 2000 probes at 20 kpps take ~100 ms; count only, never assert a duration bound tightly.
        let mut r = RateLimiter::new(20_000.0);
        let t = Instant::now();
        let mut total = 0;
        while total < 2000 {
            let n = r.allowance(16, || false);
            r.sent(n);
            total += n;
        }
        assert!(
            t.elapsed() >= Duration::from_millis(95),
            "{:?}",
            t.elapsed()
        );
    }
}
