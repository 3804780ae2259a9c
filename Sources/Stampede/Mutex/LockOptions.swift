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

    public init(
        leaseDuration: Duration = .seconds(10),
        maximumWait: Duration = .seconds(10),
        recheckInterval: Duration = .milliseconds(200),
        onLeaseLost: (@Sendable (LeaseLoss) async -> Void)? = nil
    ) {
        self.leaseDuration = leaseDuration
        self.maximumWait = maximumWait
        self.recheckInterval = recheckInterval
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
    }
}

/// A fencing token: a number that grows with every acquisition of one lock name.
///
/// Hand it to the storage you write under the lock and have the storage reject a write that
/// carries a smaller token than one it has seen: then a holder that lost its lease (paused,
/// partitioned) cannot overwrite the work of the holder after it. See
/// ``RedisMutex/setIfFenceIsNewest(_:at:fence:)``.
public struct FencingToken: Sendable, Hashable, Comparable, CustomStringConvertible {
    public let value: Int

    public init(_ value: Int) { self.value = value }

    public static func < (lhs: FencingToken, rhs: FencingToken) -> Bool { lhs.value < rhs.value }
    public var description: String { "\(value)" }
}

/// A lock held by this process.
public struct Lease: Sendable, Hashable {
    /// The lock's name as given to ``RedisMutex``.
    public let name: String
    /// This acquisition's random token, stored in the lock; only its holder can renew or release.
    public let token: String
    /// This acquisition's fencing token.
    public let fence: FencingToken
}

/// What ``LockOptions/onLeaseLost`` is told.
public struct LeaseLoss: Sendable, CustomStringConvertible {
    public enum Reason: Sendable, Equatable {
        /// A renewal or the release found the lock gone or held by another token.
        case tokenGone
        /// Redis could not be reached until the lease ran out by the local clock.
        case redisUnreachable
    }

    public let lease: Lease
    public let reason: Reason

    public var description: String { "lease on '\(lease.name)' (fence \(lease.fence)) lost: \(reason)" }
}
