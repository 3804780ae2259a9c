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

/// A lock held by this process: a ``RedisMutex`` lock, or a cache key's load lease.
public struct Lease: Sendable, Hashable {
    /// The lock's name as given to ``RedisMutex``, or the cache key.
    public let name: String
    /// This acquisition's random token, stored in the lock; only its holder can renew or release.
    public let token: String
    /// This acquisition's fencing token.
    public let fence: FencingToken

    /// 128 random bits as hex: unguessable, so no other holder can release or renew the lock.
    static func randomToken() -> String {
        var generator = SystemRandomNumberGenerator()
        let high = generator.next() as UInt64
        let low = generator.next() as UInt64
        let hex = [high, low].map { word -> String in
            let digits = String(word, radix: 16)
            return String(repeating: "0", count: 16 - digits.count) + digits
        }
        return hex.joined()
    }
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
