import Foundation
/// How one cache entry is kept, refreshed and loaded. Cache-wide defaults live in the
/// ``StampedeCache`` configuration; any call can pass its own.
public struct CachePolicy: Sendable {
    /// What to do when Redis cannot be reached.
    public enum RedisUnavailable: Sendable {
        /// Call the loader (one call per process and key at a time) and log at debug.
        case loadLocally
        /// Throw ``StampedeError/Code/redisUnavailable``.
        case fail
    }

    /// What a caller does when another caller's load has not finished within ``waitTimeout``.
    public enum WaitTimedOut: Sendable {
        /// Call the loader itself, without the lease; its value is returned, not stored.
        case loadLocally
        /// Throw ``StampedeError/Code/waitTimedOut``.
        case fail
    }

    /// Who waits for the refresh of a stale value (or one due for an early refresh).
    public enum StaleRefresh: Sendable {
        /// Nobody: every caller gets the old value at once, and the caller that takes the
        /// lease refreshes it in the background.
        case background
        /// The caller that takes the lease loads and gets the new value; everyone else gets
        /// the old value at once. For loaders that must end before their caller returns (an
        /// HTTP handler, which cannot outlive its request).
        case byTheLeaseHolder
    }

    /// How long a value is fresh: served without a load. Default: 60 s.
    public var timeToLive: Duration
    /// How long past fresh a value may still be served while one caller fleet-wide refreshes
    /// it in the background (callers get the old value at once). Default: zero (off).
    public var staleWhileRevalidate: Duration
    /// How long past fresh a value may be served when the loader fails, instead of the error.
    /// Default: zero (off).
    public var staleIfError: Duration
    /// After a failed load whose callers got the stale value, that value counts as fresh
    /// for this long, fleet-wide, before the loader is tried again: a failing origin is not
    /// hammered by every caller. Default: 1 s.
    public var retryAfterError: Duration
    /// XFetch early refresh: a fresh value is refreshed ahead of expiry with a probability that
    /// grows as expiry nears and with the last load's duration; one caller fleet-wide does it
    /// while the rest keep the value. `nil` disables it. Default: 1.
    public var earlyRefreshBeta: Double?
    /// The fresh time of each fill is lengthened by a random amount up to this, so that keys
    /// filled together do not expire together. Default: zero.
    public var jitter: Duration
    /// How long "no such value" (a loader that returned `nil`) is cached. Default: 10 s.
    public var negativeTimeToLive: Duration
    /// After this long, a caller waiting for a load that has a stale value to fall back on
    /// gets the stale value; the load goes on and fills in the background. Default: `nil` (off).
    public var loaderSoftTimeout: Duration?
    /// After this long the load is abandoned (its task cancelled) and callers get
    /// ``StampedeError/Code/loaderTimedOut`` (or a stale value if `staleIfError` allows).
    /// Default: `nil` (off).
    public var loaderHardTimeout: Duration?
    /// The loader's lease in Redis; renewed every third of it while the loader runs.
    /// Default: 10 s.
    public var leaseDuration: Duration
    /// The longest a caller waits, in all, for another caller's load. Meanwhile it is woken
    /// by the fill (or the failure), and asks again whenever the loader's lease runs out, so
    /// that a loader that died is replaced. Past it, the caller gets the stale value if
    /// ``staleIfError`` allows, else does as ``whenWaitTimesOut`` says. A load in this
    /// process is bounded by ``loaderHardTimeout`` instead. Default: 20 s, twice the default
    /// lease: a waiter outlives a leader that died holding a fresh lease, and the load of
    /// the caller that takes over.
    public var waitTimeout: Duration
    /// Default: ``RedisUnavailable/loadLocally``.
    public var whenRedisUnavailable: RedisUnavailable
    /// Default: ``WaitTimedOut/fail``: a loader slower than the wait timeout does not
    /// turn its waiters into origin calls.
    public var whenWaitTimesOut: WaitTimedOut
    /// Default: ``StaleRefresh/background``.
    public var staleRefresh: StaleRefresh = .background

    public init(
        timeToLive: Duration = .seconds(60),
        staleWhileRevalidate: Duration = .zero,
        staleIfError: Duration = .zero,
        retryAfterError: Duration = .seconds(1),
        earlyRefreshBeta: Double? = 1,
        jitter: Duration = .zero,
        negativeTimeToLive: Duration = .seconds(10),
        loaderSoftTimeout: Duration? = nil,
        loaderHardTimeout: Duration? = nil,
        leaseDuration: Duration = .seconds(10),
        waitTimeout: Duration = .seconds(20),
        whenRedisUnavailable: RedisUnavailable = .loadLocally,
        whenWaitTimesOut: WaitTimedOut = .fail
    ) {
        self.timeToLive = timeToLive
        self.staleWhileRevalidate = staleWhileRevalidate
        self.staleIfError = staleIfError
        self.retryAfterError = retryAfterError
        self.earlyRefreshBeta = earlyRefreshBeta
        self.jitter = jitter
        self.negativeTimeToLive = negativeTimeToLive
        self.loaderSoftTimeout = loaderSoftTimeout
        self.loaderHardTimeout = loaderHardTimeout
        self.leaseDuration = leaseDuration
        self.waitTimeout = waitTimeout
        self.whenRedisUnavailable = whenRedisUnavailable
        self.whenWaitTimesOut = whenWaitTimesOut
    }

    /// The longest time to live, stale window or jitter accepted.
    static let longestDuration: Duration = .seconds(100 * 366 * 86_400)

    /// How long past fresh an entry is kept in Redis: the longer of the two stale windows.
    var staleWindow: Duration { max(staleWhileRevalidate, staleIfError) }

    /// How long a stored value stays fresh, then stale: the time to live (or the negative
    /// one, for "no such value") with its share of jitter, then the stale window.
    func storedTimes(isNegative: Bool, jitterDraw: Double) -> (fresh: Duration, stale: Duration) {
        var fresh = isNegative ? negativeTimeToLive : timeToLive
        if jitter > .zero { fresh += jitter * jitterDraw }
        return (fresh, isNegative ? .zero : staleWindow)
    }

    /// Runs on every lookup: the messages are built only when a check fails.
    func validate() throws(StampedeError) {
        func check(_ condition: Bool, _ message: @autoclosure () -> String) throws(StampedeError) {
            if !condition { throw StampedeError(.invalidArgument, message()) }
        }
        try check(timeToLive >= .milliseconds(1), "timeToLive must be at least 1 ms, got \(timeToLive)")
        try check(staleWhileRevalidate >= .zero, "staleWhileRevalidate must not be negative")
        try check(staleIfError >= .zero, "staleIfError must not be negative")
        try check(retryAfterError >= .zero, "retryAfterError must not be negative")
        try check(jitter >= .zero, "jitter must not be negative")
        try check(negativeTimeToLive >= .zero, "negativeTimeToLive must not be negative")
        // An entry's times are stored as at most 15 digits of milliseconds since the epoch
        // (about the year 33000); a time past that would make every fill unreadable.
        for (name, duration) in [("timeToLive", timeToLive), ("staleWhileRevalidate", staleWhileRevalidate),
                                 ("staleIfError", staleIfError), ("jitter", jitter), ("negativeTimeToLive", negativeTimeToLive)] {
            try check(duration <= Self.longestDuration, "\(name) must be at most 100 years, got \(duration)")
        }
        try check(leaseDuration >= .milliseconds(3), "leaseDuration must be at least 3 ms, got \(leaseDuration)")
        try check(waitTimeout > .zero, "waitTimeout must be positive")
        if let beta = earlyRefreshBeta { try check(beta > 0 && beta.isFinite, "earlyRefreshBeta must be positive") }
        if let soft = loaderSoftTimeout { try check(soft > .zero, "loaderSoftTimeout must be positive") }
        if let hard = loaderHardTimeout { try check(hard > .zero, "loaderHardTimeout must be positive") }
    }
}

extension CachePolicy {
    /// What a lookup may do with an entry.
    @_spi(Benchmarks)
    public enum Freshness: Sendable, Equatable {
        /// Serve it.
        case fresh
        /// Fresh, but early refresh (XFetch) picked this lookup to refresh it.
        case dueForEarlyRefresh
        /// Past its fresh time, inside stale-while-revalidate: serve it and refresh.
        case stale
        /// Past serving: load (or wait for the load).
        case expired
    }

    /// How this policy treats `entry` at Redis time `now`, given this lookup's early-refresh
    /// draw (``earlyRefreshDraw()``): XFetch refreshes when
    /// `now + loadDuration * draw >= freshUntil`, so slow loads start earlier.
    @_spi(Benchmarks)
    public func freshness(of entry: StoredEntry, now: Int, earlyRefreshDraw draw: Double) -> Freshness {
        if now < entry.freshUntil {
            let early = draw > 0 && Double(now) + Double(entry.loadDuration) * draw >= Double(entry.freshUntil)
            return early ? .dueForEarlyRefresh : .fresh
        }
        if now < entry.staleUntil && now < entry.freshUntil + staleWhileRevalidate.wholeMilliseconds { return .stale }
        return .expired
    }

    /// This lookup's early-refresh draw, `-beta * ln(rand)`, or 0 without early refresh.
    @_spi(Benchmarks)
    public func earlyRefreshDraw() -> Double {
        guard let beta = earlyRefreshBeta else { return 0 }
        return -beta * log(EarlyRefreshRandom.uniform())
    }
}
