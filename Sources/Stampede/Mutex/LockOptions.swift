/// How a ``RedisMutex`` takes, keeps and waits for a lock.
public struct LockOptions: Sendable {
    /// How long the lock lasts without renewal: its TTL in Redis. While the body runs, a
    /// watchdog renews it every third of this. If the holder process dies, the lock frees
    /// itself after at most this long. Default: 10 s.
    public var leaseDuration: Duration
    /// How long ``RedisMutex/withLock(_:options:_:)`` waits for a held lock before it throws
    /// ``StampedeError/Code/waitTimedOut``. Default: 10 s.
    public var maximumWait: Duration
    /// The longest a waiter sleeps before checking the lock again when no release message
    /// arrives (a lost message, a holder that died). Waiters are woken by the release
    /// message itself; this is only the fallback. Default: 200 ms, jittered.
    public var recheckInterval: Duration
    /// Called once when the lease is lost while the body runs, after the body was
    /// cancelled: the place for rollback and alerting. Default: `nil`.
    public var onLeaseLost: (@Sendable (LeaseLoss) async -> Void)?
    /// When set, an acquisition counts only once this many replicas of the lock's master
    /// acknowledged it, so that a failover right after it does not let a second holder in.
    /// An acquisition they do not acknowledge in time is released and throws
    /// ``StampedeError/Code/noQuorum``. Default: `nil` (Redis's asynchronous replication).
    public var replicaAcknowledgement: ReplicaAcknowledgement?

    public init(
        leaseDuration: Duration = .seconds(10),
        maximumWait: Duration = .seconds(10),
        recheckInterval: Duration = .milliseconds(200),
        replicaAcknowledgement: ReplicaAcknowledgement? = nil,
        onLeaseLost: (@Sendable (LeaseLoss) async -> Void)? = nil
    ) {
        self.leaseDuration = leaseDuration
        self.maximumWait = maximumWait
        self.recheckInterval = recheckInterval
        self.replicaAcknowledgement = replicaAcknowledgement
        self.onLeaseLost = onLeaseLost
    }

    func validate() throws(StampedeError) {
        guard leaseDuration >= .milliseconds(3) else {
            throw StampedeError(.invalidArgument, "leaseDuration must be at least 3 ms, got \(leaseDuration)")
        }
        guard maximumWait >= .zero else {
            throw StampedeError(.invalidArgument, "maximumWait must not be negative, got \(maximumWait)")
        }
        guard recheckInterval > .zero else {
            throw StampedeError(.invalidArgument, "recheckInterval must be positive, got \(recheckInterval)")
        }
        try replicaAcknowledgement?.validate()
    }
}
