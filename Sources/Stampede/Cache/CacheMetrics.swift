import Metrics

/// The cache's swift-metrics instruments, all labelled `stampede.cache.*`, with the cache's
/// namespace as a dimension.
@usableFromInline
struct CacheMetrics: Sendable {
    /// Fresh values served from Redis.
    let hits: Counter
    /// Values served from the near cache.
    @usableFromInline let nearHits: Counter
    /// Stale values served (stale-while-revalidate, stale-if-error, soft timeout).
    let staleServed: Counter
    /// Lookups that found no usable value.
    let misses: Counter
    /// Loader calls made by this process.
    let loads: Counter
    /// Loader calls that threw or timed out.
    let loadErrors: Counter
    /// Callers that joined another caller's lookup in this process.
    let coalesced: Counter
    /// Lookups that found another process loading and waited for it.
    let leaseContended: Counter
    /// Loads whose lease was lost while they ran.
    let leaseLost: Counter
    /// Lease renewals by the watchdog while loaders ran.
    let renewals: Counter
    /// Fills rejected because someone took over or invalidated meanwhile.
    let fillsRejected: Counter
    /// Callers whose wait for another caller's load ran past the policy's wait timeout.
    let waitTimeouts: Counter
    /// Fill, failure and invalidation messages received.
    let notifications: Counter
    /// Lookups that found foreign or unreadable data under a key's names and replaced it: an
    /// entry (a miss), a lock without expiry (taken over), a fence that is not a number.
    let corruptEntries: Counter
    /// Values loaded without Redis because it was unavailable
    /// (``CachePolicy/RedisUnavailable/loadLocally``).
    let loadsWithoutRedis: Counter
    /// Leases that fewer replicas than ``StampedeCache/Configuration/replicaAcknowledgement``
    /// asks for acknowledged in time.
    let leasesUnacknowledged: Counter
    /// Time the loader took.
    let loadTime: Timer

    /// - Parameter namespace: the cache's, as the `namespace` dimension of every instrument,
    ///   so that two caches in one process report apart.
    init(factory: (any MetricsFactory)?, namespace: String) {
        let factory = factory ?? MetricsSystem.factory
        let dimensions = [("namespace", namespace)]
        func counter(_ name: String) -> Counter { Counter(label: "stampede.cache.\(name)", dimensions: dimensions, factory: factory) }
        hits = counter("hits")
        nearHits = counter("near_hits")
        staleServed = counter("stale_served")
        misses = counter("misses")
        loads = counter("loads")
        loadErrors = counter("load_errors")
        coalesced = counter("coalesced")
        leaseContended = counter("lease_contended")
        leaseLost = counter("lease_lost")
        renewals = counter("renewals")
        fillsRejected = counter("fills_rejected")
        waitTimeouts = counter("wait_timeouts")
        notifications = counter("notifications")
        corruptEntries = counter("corrupt_entries")
        leasesUnacknowledged = counter("leases_unacknowledged")
        loadsWithoutRedis = counter("loads_without_redis")
        loadTime = Timer(label: "stampede.cache.load", dimensions: dimensions, factory: factory)
    }
}
