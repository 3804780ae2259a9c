import Synchronization
import Tracing

/// Spans for a cache's lookups and origin calls, when ``StampedeCache/Configuration/tracing``
/// asks for them: `stampede.cache.lookup` per call, with the namespace, the outcome and (if
/// allowed) the key, and `stampede.cache.load` around each origin call this process makes.
public struct CacheTracing: Sendable {
    /// Where the spans go. Default: the tracer the process bootstrapped
    /// (`InstrumentationSystem.tracer`).
    public var tracer: any Tracer
    /// Whether spans carry the cache key (`stampede.key`); keys can be personal data.
    /// Default: `false`.
    public var recordsKeys: Bool

    public init(tracer: any Tracer = InstrumentationSystem.tracer, recordsKeys: Bool = false) {
        self.tracer = tracer
        self.recordsKeys = recordsKeys
    }
}

/// How a lookup was answered, as its span's `stampede.outcome` says.
enum LookupOutcome: String, Sendable {
    /// From this process's near cache.
    case nearHit = "near_hit"
    /// A fresh value from Redis.
    case hit
    /// A stale value (stale-while-revalidate, stale-if-error, a soft timeout, a wait that timed out).
    case staleServed = "stale_served"
    /// Joined another caller's lookup in this process.
    case joined
    /// Took the lease and called the origin.
    case leader
    /// Waited for another process's load and got its value.
    case follower
    /// Redis was unavailable; loaded without it (or served what an earlier such load kept).
    case withoutRedis = "without_redis"
}

/// What the lookup under way in this task learned of its outcome, for its span. Set only
/// while a traced lookup runs, so an untraced one pays one task-local read.
final class LookupTrace: Sendable {
    @TaskLocal static var current: LookupTrace?

    private let outcome = Mutex<LookupOutcome?>(nil)

    /// Notes `outcome` for the traced lookup of this task, if there is one; the last note wins.
    static func note(_ outcome: LookupOutcome) {
        current?.outcome.withLock { $0 = outcome }
    }

    /// Notes `outcome` unless one was noted already (a fresh read after a wait is a follower's).
    static func noteUnlessNoted(_ outcome: LookupOutcome) {
        current?.outcome.withLock { if $0 == nil { $0 = outcome } }
    }

    var noted: LookupOutcome? { outcome.withLock { $0 } }
}

extension StampedeCache {
    /// Runs `lookup` (the near cache first, then Redis) inside a `stampede.cache.lookup` span.
    @usableFromInline
    func traced<Value: Sendable>(
        _ key: String, _ tracing: CacheTracing, nearHit: () throws -> Value??, lookup: () async throws -> Value?
    ) async throws -> Value? {
        try await tracing.tracer.withAnySpan("stampede.cache.lookup", ofKind: .internal) { span in
            span.attributes["stampede.namespace"] = configuration.namespace
            if tracing.recordsKeys { span.attributes["stampede.key"] = key }
            if let hit = try nearHit() {
                span.attributes["stampede.outcome"] = LookupOutcome.nearHit.rawValue
                return hit
            }
            let trace = LookupTrace()
            let value = try await LookupTrace.$current.withValue(trace) { try await lookup() }
            if let outcome = trace.noted { span.attributes["stampede.outcome"] = outcome.rawValue }
            return value
        }
    }

    /// Runs an origin call inside a `stampede.cache.load` span, under `context` (the
    /// lookup's, since the load runs apart from it).
    func tracedLoad<T>(_ key: String, context: ServiceContext?, _ load: () async throws -> T) async throws -> T {
        guard let tracing = configuration.tracing else { return try await load() }
        return try await tracing.tracer.withAnySpan("stampede.cache.load", context: context ?? .topLevel, ofKind: .client) { span in
            span.attributes["stampede.namespace"] = configuration.namespace
            if tracing.recordsKeys { span.attributes["stampede.key"] = key }
            return try await load()
        }
    }
}
