#if Hummingbird
import Hummingbird
import ServiceLifecycle
import Stampede
import StampedeRedis

/// Hummingbird's key-value persistence (sessions, idempotency records...) in a
/// ``StampedeCache``: writes fenced as the cache's, so a slow writer cannot overwrite a newer
/// value, and every app instance's near cache drops a changed key.
///
/// Values without an expiry are kept for the longest time a policy allows (100 years);
/// `set` without an expiry gives the value a new one rather than keeping the old.
public struct StampedePersistDriver: PersistDriver {
    public let cache: StampedeCache
    static let forever = Duration.seconds(100 * 365 * 24 * 3600)

    public init(cache: StampedeCache) {
        self.cache = cache
    }

    func policy(_ expires: Duration?) -> CachePolicy {
        CachePolicy(timeToLive: max(expires ?? Self.forever, .milliseconds(1)), staleWhileRevalidate: .zero, staleIfError: .zero, earlyRefreshBeta: nil)
    }

    public func create<Object: Codable & Sendable>(key: String, value: Object, expires: Duration?) async throws {
        guard try await cache.add(value, for: key, policy: policy(expires)) else { throw PersistError.duplicate }
    }

    public func set<Object: Codable & Sendable>(key: String, value: Object, expires: Duration?) async throws {
        try await cache.set(value, for: key, policy: policy(expires))
    }

    public func get<Object: Codable & Sendable>(key: String, as type: Object.Type) async throws -> Object? {
        do {
            return try await cache.cachedValue(for: key, as: type)
        } catch let error as StampedeError where error.code == .corruptEntry {
            return nil  // stored as another type
        }
    }

    public func remove(key: String) async throws {
        try await cache.remove(key)
    }

    /// Serves until the group shuts down; the cache itself is a service of its own.
    public func run() async throws {
        try? await gracefulShutdown()
    }
}
#endif
