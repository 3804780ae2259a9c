import Metrics

/// The lock's swift-metrics instruments.
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

    /// - Parameter factory: where the instruments report; `nil` for the global `MetricsSystem`.
    init(factory: (any MetricsFactory)?) {
        let factory = factory ?? MetricsSystem.factory
        acquired = Counter(label: "stampede.lock.acquired", factory: factory)
        contended = Counter(label: "stampede.lock.contended", factory: factory)
        waitTime = Timer(label: "stampede.lock.wait", factory: factory)
        renewals = Counter(label: "stampede.lock.renewals", factory: factory)
        lost = Counter(label: "stampede.lock.lost", factory: factory)
    }
}
