import Metrics

/// A lock's (or a semaphore's) swift-metrics instruments.
struct LockMetrics: Sendable {
    /// Locks acquired.
    let acquired: Counter
    /// Acquisitions that found the lock held and had to wait (or gave up, for `tryLock`).
    let contended: Counter
    /// Time from asking for a lock to holding it.
    let waitTime: Timer
    /// Successful lease renewals by the watchdog.
    let renewals: Counter
    /// Leases lost while their body ran.
    let lost: Counter

    /// - Parameters:
    ///   - factory: where the instruments report; `nil` for the global `MetricsSystem`.
    ///   - prefix: the labels' first part: `stampede.lock` for locks, `stampede.semaphore`
    ///     for a semaphore's permits.
    init(factory: (any MetricsFactory)?, prefix: String = "stampede.lock") {
        let factory = factory ?? MetricsSystem.factory
        acquired = Counter(label: "\(prefix).acquired", factory: factory)
        contended = Counter(label: "\(prefix).contended", factory: factory)
        waitTime = Timer(label: "\(prefix).wait", factory: factory)
        renewals = Counter(label: "\(prefix).renewals", factory: factory)
        lost = Counter(label: "\(prefix).lost", factory: factory)
    }
}
