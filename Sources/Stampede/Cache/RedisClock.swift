import Synchronization

/// Redis's clock, read in this process: the offset between Redis's `TIME` and this process's
/// monotonic clock, taken from a hit that carried `TIME`, lets the hits of the next second
/// judge freshness with one command instead of two.
///
/// Freshness stays judged on Redis's clock (nodes with skewed clocks agree), within a known
/// error: half the round trip of the sample plus ``driftAllowance``. ``now(at:)`` returns
/// Redis's time made later by that error, so that an entry near the end of its fresh time is
/// judged not fresh and goes to the lease-get script, which reads Redis's clock itself.
///
/// A sample is renewed when it is half its ``validity`` old, by one hit only (the first to
/// ask, ``shouldRead(at:)``): the others go on with the sample they have. Were it renewed
/// only once it lapsed, every hit sent meanwhile would carry `TIME`, up to one per hit in
/// flight, once a second.
final class RedisClock: Sendable {
    /// How long a sample is trusted. A jump of Redis's wall clock (not its slewing) is seen
    /// at the next sample, at most this late.
    static let validity: Duration = .seconds(1)
    /// What the two clocks may drift apart within ``validity`` (NTP slews by at most 0.5 ms
    /// a second), and the rounding of `TIME`'s microseconds.
    static let driftAllowance = 1.0

    private struct Sample {
        /// Redis's time less this process's clock, in milliseconds.
        var offset: Double
        /// Half the round trip that carried `TIME`, in milliseconds.
        var uncertainty: Double
        var takenAt: ContinuousClock.Instant
    }

    private struct State {
        var sample: Sample?
        /// When a hit last took on renewing a sample still in use.
        var renewalClaimedAt: ContinuousClock.Instant?
    }

    private let origin = ContinuousClock.now
    private let state = Mutex(State())

    /// Whether a hit at `instant` should carry `TIME`: when no sample is usable (every hit
    /// must), or for the one hit that renews a sample half its validity old. A renewal whose
    /// reply never came (its connection failed) may be taken on again after a quarter of the
    /// validity.
    func shouldRead(at instant: ContinuousClock.Instant = .now) -> Bool {
        state.withLock { state in
            guard let sample = state.sample, instant - sample.takenAt < Self.validity else { return true }
            guard instant - sample.takenAt >= Self.validity / 2 else { return false }
            if let claimed = state.renewalClaimedAt, instant - claimed < Self.validity / 4 { return false }
            state.renewalClaimedAt = instant
            return true
        }
    }

    /// Redis's time at `instant` in milliseconds since the epoch, plus the error it may
    /// have; `nil` when no sample is younger than ``validity`` (then read `TIME`).
    func now(at instant: ContinuousClock.Instant = .now) -> Int? {
        guard let sample = state.withLock({ $0.sample }), instant - sample.takenAt < Self.validity else { return nil }
        return Int((milliseconds(instant) + sample.offset + sample.uncertainty + Self.driftAllowance).rounded(.up))
    }

    /// Records Redis's `TIME` (milliseconds since the epoch), read by a command sent at
    /// `sentAt` whose reply arrived at `receivedAt`. A sample replaces the last one unless
    /// that is still young and was more exact.
    func record(redisMilliseconds: Double, sentAt: ContinuousClock.Instant, receivedAt: ContinuousClock.Instant) {
        let midpoint = (milliseconds(sentAt) + milliseconds(receivedAt)) / 2
        let new = Sample(offset: redisMilliseconds - midpoint, uncertainty: milliseconds(receivedAt) - midpoint, takenAt: receivedAt)
        state.withLock { state in
            state.renewalClaimedAt = nil
            if let old = state.sample, receivedAt - old.takenAt < Self.validity / 2, old.uncertainty < new.uncertainty { return }
            state.sample = new
        }
    }

    private func milliseconds(_ instant: ContinuousClock.Instant) -> Double {
        let (seconds, attoseconds) = (instant - origin).components
        return Double(seconds) * 1000 + Double(attoseconds) * 1e-15
    }
}
