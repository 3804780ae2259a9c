/// Waiting, after a lock or a cache lease is taken, until replicas of its Redis master hold
/// it too (`WAIT`).
///
/// Redis replicates asynchronously: a master that fails in the moment after it granted a
/// lease may be replaced by a replica that never heard of it, and a second holder gets in.
/// With this option the grant counts only once `replicas` replicas acknowledged it. The cost
/// is a replication round trip on every acquisition (a few hundred microseconds on a local
/// network; see `docs/performance.md`), during which the connection that carried it serves
/// nothing else; and up to `timeout` when a replica is slow or gone.
///
/// Acknowledged is not durable: a replica that acknowledged may still lose the write if it
/// fails too, and a failover may promote a replica that did not acknowledge (ask for as many
/// replicas as the master has to rule that out).
public struct ReplicaAcknowledgement: Sendable, Hashable {
    /// How many replicas must acknowledge. Default: 1.
    public var replicas: Int
    /// How long to wait for them; must be shorter than the client's command timeout.
    /// Default: 100 ms.
    public var timeout: Duration

    public init(replicas: Int = 1, timeout: Duration = .milliseconds(100)) {
        self.replicas = replicas
        self.timeout = timeout
    }

    func validate() throws(StampedeError) {
        guard replicas >= 1 else { throw StampedeError(.invalidArgument, "replicaAcknowledgement.replicas must be at least 1, got \(replicas)") }
        guard timeout > .zero else { throw StampedeError(.invalidArgument, "replicaAcknowledgement.timeout must be positive, got \(timeout)") }
    }
}
