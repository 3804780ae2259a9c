import Metrics

/// The lock's swift-metrics instruments.
struct LockMetrics: Sendable {
    /// Locks acquired.
    let acquired = Counter(label: "stampede.lock.acquired")
    /// Acquisitions that found the lock held and had to wait (or gave up, for `tryLock`).
    let contended = Counter(label: "stampede.lock.contended")
    /// Time from asking for a lock to holding it.
    let waitTime = Timer(label: "stampede.lock.wait")
    /// Successful lease renewals by the watchdog.
    let renewals = Counter(label: "stampede.lock.renewals")
    /// Leases lost while their body ran.
    let lost = Counter(label: "stampede.lock.lost")
}
