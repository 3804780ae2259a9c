import Foundation
import Logging
import Metrics
import StampedeRedis

/// A cache in Redis that rebuilds an expired key with one loader call across every process.
///
/// ```swift
/// let cache = StampedeCache(client: client)
/// let profile = try await cache.value(for: "user:42", policy: .init(timeToLive: .seconds(30))) {
///     try await database.loadProfile(42)
/// }
/// ```
///
/// A fresh value costs one round trip (`TIME` and `HMGET`, judged on Redis's clock).
/// Otherwise one script decides on Redis's clock whether the value is stale or missing and,
/// when it needs loading, gives the lease to one caller fleet-wide (the leader). In this
/// process, concurrent lookups of one key share one such round trip. The
/// leader runs the loader while a watchdog renews its lease, then stores the value only if
/// no one took over and nothing was invalidated since (a fenced fill) and publishes "filled".
/// Everyone else is woken by that message, or serves the stale value at once when the
/// policy's stale-while-revalidate window allows.
///
/// Redis keys for cache key `K` in namespace `N`: `{N:K}` (the entry, a hash),
/// `{N:K}:lock`, `{N:K}:fence`, all in one cluster slot; messages go on channel `N:events`.
public final class StampedeCache: Sendable {
    /// Cache-wide settings.
    public struct Configuration: Sendable {
        /// The first part of every Redis key and the channel name. Default: `"stampede"`.
        public var namespace: String
        /// The policy for calls that pass none.
        public var policy: CachePolicy
        /// How values become bytes. Default: JSON, raw bytes as they are.
        public var codec: any CacheCodec
        /// The largest encoded value stored. Default: 1 MiB.
        public var maximumValueSize: Int
        /// An in-process cache in front of Redis for hot keys; `nil` turns it off.
        /// Default: `nil`.
        public var nearCache: NearCacheOptions?
        /// The most values loaded while Redis is unavailable (``CachePolicy/RedisUnavailable/loadLocally``)
        /// that this process keeps, each for its time to live, so that an outage costs the
        /// origin one call per key and time to live rather than one per lookup. They are
        /// dropped when Redis answers again. 0 keeps none. Default: 10,000.
        public var outageCapacity: Int
        /// When set, each lease read waits until this many replicas of the key's master
        /// acknowledged it, so that a failover right after a lease was taken does not let a
        /// second process load the same key. A lease they do not acknowledge in time is kept
        /// and its load goes ahead (the fence still rejects a second fill), counted in
        /// `stampede.cache.leases_unacknowledged`. Default: `nil` (Redis's asynchronous
        /// replication).
        public var replicaAcknowledgement: ReplicaAcknowledgement?
        /// How long a service's graceful shutdown waits for background refreshes (and loads
        /// past a soft timeout) to store their values (see ``StampedeCache/run()``).
        /// Default: 10 s.
        public var shutdownDeadline: Duration
        /// Spans for lookups and origin calls (``CacheTracing``); `nil` for none, which costs
        /// a lookup nothing. Default: `nil`.
        public var tracing: CacheTracing?

        public init(
            namespace: String = "stampede", policy: CachePolicy = CachePolicy(),
            codec: any CacheCodec = JSONCacheCodec(), maximumValueSize: Int = 1 << 20,
            nearCache: NearCacheOptions? = nil, outageCapacity: Int = 10_000,
            replicaAcknowledgement: ReplicaAcknowledgement? = nil, shutdownDeadline: Duration = .seconds(10),
            tracing: CacheTracing? = nil
        ) {
            self.namespace = namespace
            self.policy = policy
            self.codec = codec
            self.maximumValueSize = maximumValueSize
            self.nearCache = nearCache
            self.outageCapacity = outageCapacity
            self.replicaAcknowledgement = replicaAcknowledgement
            self.shutdownDeadline = shutdownDeadline
            self.tracing = tracing
        }

        /// The checks that do not depend on the lookup's policy.
        func validate(commandTimeout: Duration) throws(StampedeError) {
            if let replicaAcknowledgement {
                try replicaAcknowledgement.validate()
                guard replicaAcknowledgement.timeout < commandTimeout else {
                    throw StampedeError(.invalidArgument, "replicaAcknowledgement.timeout (\(replicaAcknowledgement.timeout)) must be shorter than the client's command timeout (\(commandTimeout))")
                }
            }
        }
    }

    /// The near cache: values served from this process's memory, for a short time.
    ///
    /// A value is served locally for at most `min(timeToLive, the time it stays fresh in
    /// Redis)`. Fill and invalidation messages from any process drop it at once, and when
    /// the subscription that carries them was interrupted, every entry is dropped (messages
    /// may have been missed). Values are only kept while that subscription is up.
    public struct NearCacheOptions: Sendable {
        /// The most entries kept; the least recently used go first. Default: 10,000.
        public var capacity: Int
        /// The longest an entry is served locally. Default: 5 s.
        public var timeToLive: Duration

        public init(capacity: Int = 10_000, timeToLive: Duration = .seconds(5)) {
            self.capacity = capacity
            self.timeToLive = timeToLive
        }
    }

    /// The longest cache key accepted, in UTF-8 bytes.
    public static let maximumKeyLength = 1024

    public let client: RedisClient
    public let configuration: Configuration
    /// The configuration's check, made once: every lookup throws its error, if any (the
    /// configured policy's only when the lookup uses it).
    let configurationCheck: (policy: Result<Void, StampedeError>, rest: Result<Void, StampedeError>)
    let logger: Logger
    @usableFromInline let metrics: CacheMetrics
    let flights: SingleFlight<ExactKey, Found>
    let events: CacheEvents
    @usableFromInline let clock: any MonotonicClock
    /// Renews leases while loaders run.
    let watchdog: LeaseWatchdog
    /// Background refreshes and loads past a soft timeout.
    let background = BackgroundWork()
    /// The near cache, when configured.
    @usableFromInline let near: NearCache?
    /// Redis's clock as last read, so that most hits need no `TIME`.
    let redisClock = RedisClock()
    /// Values loaded while Redis was unavailable.
    let outageValues: OutageValues

    /// What a lookup found, before decoding: `nil` bytes for "no such value".
    struct Found: Sendable {
        var bytes: [UInt8]?
    }

    /// - Parameters:
    ///   - logger: loads and rejected fills at debug level; lost leases, loads without Redis
    ///     and leases no replica acknowledged as warnings. Default: a `stampede.cache` logger
    ///     of the global `LoggingSystem`.
    ///   - metricsFactory: where the `stampede.cache.*` metrics report. Default: the global
    ///     `MetricsSystem`.
    public convenience init(
        client: RedisClient,
        configuration: Configuration = Configuration(),
        logger: Logger = Logger(label: "stampede.cache"),
        metricsFactory: (any MetricsFactory)? = nil
    ) {
        self.init(client: client, configuration: configuration, logger: logger, metricsFactory: metricsFactory, clock: SystemClock())
    }

    /// As the public initializer, on `clock` (a test clock in tests).
    init(
        client: RedisClient, configuration: Configuration, logger: Logger, metricsFactory: (any MetricsFactory)?,
        clock: any MonotonicClock
    ) {
        self.client = client
        self.clock = clock
        self.configuration = configuration
        self.configurationCheck = (
            Result { () throws(StampedeError) in try configuration.policy.validate() },
            Result { () throws(StampedeError) in try configuration.validate(commandTimeout: client.configuration.commandTimeout) })
        self.logger = logger
        let metrics = CacheMetrics(factory: metricsFactory, namespace: configuration.namespace)
        self.metrics = metrics
        let near = configuration.nearCache.map { NearCache(capacity: max($0.capacity, 1)) }
        self.near = near
        let flights = SingleFlight<ExactKey, Found>()
        self.flights = flights
        self.outageValues = OutageValues(capacity: configuration.outageCapacity, onePart: !client.configuration.isCluster)
        self.events = CacheEvents(
            client: client, channel: CacheFormat.channel(namespace: configuration.namespace), logger: logger, clock: clock,
            notifications: { metrics.notifications.increment() },
            changed: { kind, key in
                near?.remove(key)
                // A lookup in flight may have read the key before the invalidation: callers
                // from now on start a new one instead of joining it.
                if kind == .invalidated { flights.forget(ExactKey(key)) }
            },
            mayHaveMissedChanges: { near?.removeAll() })
        self.watchdog = LeaseWatchdog(client: client, clock: clock, renewals: metrics.renewals, logger: logger)
    }

    static func validate(key: String) throws(StampedeError) {
        guard !key.isEmpty else { throw StampedeError(.invalidKey, "a cache key must not be empty") }
        guard key.utf8.count <= maximumKeyLength else {
            throw StampedeError(.invalidKey, "a cache key may have at most \(maximumKeyLength) bytes, got \(key.utf8.count)")
        }
    }

    /// The value for `key`, from the cache or from `load`, which returns `nil` for "no such
    /// value"; that answer is cached too, for ``CachePolicy/negativeTimeToLive``, so that a
    /// key that does not exist is not asked of the origin again and again.
    ///
    /// It runs on the caller's executor, decoding included: called from an actor, a
    /// near-cache hit returns without leaving it. `load` runs apart, on the global executor.
    ///
    /// - Parameters:
    ///   - key: the cache key, 1 to ``maximumKeyLength`` bytes.
    ///   - policy: this call's policy; `nil` for the cache's.
    ///   - logger: where this call's lookup logs (a request's logger, say); `nil` for the
    ///     cache's. Callers that join another caller's lookup log through that one's.
    ///   - load: the origin. Across every process, one caller per key and expiry runs it.
    /// - Returns: the value, or `nil` when the loader said there is none.
    /// - Throws: ``StampedeError`` (``StampedeError/Code/invalidKey``,
    ///   ``StampedeError/Code/valueTooLarge``, ``StampedeError/Code/corruptEntry`` when the
    ///   cached bytes are not a `Value`, ``StampedeError/Code/loaderTimedOut``,
    ///   ``StampedeError/Code/leaseLost``, ``StampedeError/Code/loadFailedElsewhere``,
    ///   ``StampedeError/Code/redisUnavailable`` when the policy says to fail), what `load`
    ///   throws, or `CancellationError` when this caller is cancelled (the load goes on).
    @inlinable
    nonisolated(nonsending) public func valueIfPresent<Value: Codable & Sendable>(
        for key: String,
        as type: Value.Type = Value.self,
        policy: CachePolicy? = nil,
        logger: Logger? = nil,
        load: @escaping @Sendable () async throws -> Value?
    ) async throws -> Value? {
        if let tracing = configuration.tracing {
            return try await traced(key, tracing, nearHit: { try nearValue(Value.self, key: key) }) {
                try await decodedLookup(key, as: Value.self, policy: policy, logger: logger, makeLoader: { load })
            }
        }
        // An invalid key is never in the near cache; the lookup rejects it.
        if let hit = try nearValue(Value.self, key: key) { return hit }
        return try await decodedLookup(key, as: Value.self, policy: policy, logger: logger, makeLoader: { load })
    }

    // The generic entry points are inlinable so that they are specialized for the caller's
    // `Value`: left generic, the optionals, casts and closures of a hit go through type
    // metadata at run time. Everything past the near cache works on encoded bytes and is
    // not generic.
    //
    // The hit path runs on the caller's executor (`nonisolated(nonsending)`, down to the
    // client's send): a caller on an actor gets a near-cache hit without leaving it, and no
    // step switches executors on the way.

    /// Everything after the near cache: the shared lookup in Redis, then decoding.
    ///
    /// `makeLoader` gives the caller's loader; only a caller that leads a lookup past the hit
    /// read calls it, so that hits and callers that join another's lookup build no closures.
    @inlinable
    nonisolated(nonsending) func decodedLookup<Value: Codable & Sendable>(
        _ key: String, as type: Value.Type, policy: CachePolicy?, logger: Logger?,
        makeLoader: () -> @Sendable () async throws -> Value?
    ) async throws -> Value? {
        let bytes = try await sharedLookup(key, policy: policy, logger: logger) {
            let load = makeLoader()
            let codec = configuration.codec
            let maximumSize = configuration.maximumValueSize
            return {
                guard let value = try await load() else { return nil }
                let bytes = try codec.encode(value)
                guard bytes.count <= maximumSize else {
                    throw StampedeError(.valueTooLarge, "the value for '\(key)' has \(bytes.count) bytes; the maximum is \(maximumSize)")
                }
                return bytes
            }
        }
        guard let bytes else { return nil }
        return try decode(Value.self, key: key, bytes: bytes)
    }

    /// The lookup this process's callers of `key` share, in encoded bytes: `nil` for "no
    /// such value". `makeLoader` gives the loader, which returns the value encoded and
    /// checked against the maximum size; only the caller that leads the lookup calls it.
    @usableFromInline
    nonisolated(nonsending) func sharedLookup(
        _ key: String, policy: CachePolicy?, logger: Logger?, makeLoader: () -> @Sendable () async throws -> [UInt8]?
    ) async throws -> [UInt8]? {
        try Self.validate(key: key)
        try configurationCheck.rest.get()
        if let policy { try policy.validate() } else { try configurationCheck.policy.get() }
        let policy = policy ?? configuration.policy
        if near != nil {
            // Entries are kept only while invalidations can reach them.
            _ = await events.ensureListening(within: policy.waitTimeout)
        }
        let arrival = flights.arrive(ExactKey(key))
        if arrival.leads {
            // One early-refresh draw for the hit read and the script's decision alike.
            let draw = policy.earlyRefreshDraw()
            if let found = await hitRead(key, policy: policy, earlyRefreshDraw: draw) {
                if configuration.tracing != nil { LookupTrace.note(.hit) }
                flights.finish(arrival, with: .success(found))
                return found.bytes
            }
            let load = makeLoader()
            let logger = logger ?? self.logger
            flights.launch(arrival) { try await self.lookup(key, policy: policy, earlyRefreshDraw: draw, logger: logger, load: load) }
        } else {
            if configuration.tracing != nil { LookupTrace.note(.joined) }
            metrics.coalesced.increment()
        }
        return try await flights.result(of: arrival).bytes
    }

    /// The near cache's answer: `nil` on a miss, `.some(nil)` for a cached "no such value".
    @inlinable
    func nearValue<Value: Codable & Sendable>(_ type: Value.Type, key: String) throws -> Value?? {
        guard let near, let entry = near.entry(for: key, now: clock.now) else { return nil }
        metrics.nearHits.increment()
        guard let bytes = entry.bytes else { return .some(nil) }
        if let decoded = entry.decoded, decoded.type == ObjectIdentifier(Value.self), let value = decoded.value as? Value {
            return value
        }
        let value = try decode(Value.self, key: key, bytes: bytes)
        near.attach(value, for: key, expires: entry.expires)
        return value
    }

    @inlinable
    func decode<Value: Decodable>(_ type: Value.Type, key: String, bytes: [UInt8]) throws -> Value {
        do {
            return try configuration.codec.decode(Value.self, from: bytes)
        } catch {
            throw StampedeError(.corruptEntry, "the cached value for '\(key)' is not a \(Value.self): \(error)")
        }
    }

    /// The value for `key`, from the cache or from `load`.
    ///
    /// As ``valueIfPresent(for:as:policy:logger:load:)``, for a loader that always has a value.
    @inlinable
    nonisolated(nonsending) public func value<Value: Codable & Sendable>(
        for key: String,
        as type: Value.Type = Value.self,
        policy: CachePolicy? = nil,
        logger: Logger? = nil,
        load: @escaping @Sendable () async throws -> Value
    ) async throws -> Value {
        if let tracing = configuration.tracing {
            let found = try await traced(key, tracing, nearHit: { try nearValue(Value.self, key: key) }) {
                try await decodedLookup(key, as: Value.self, policy: policy, logger: logger, makeLoader: { { try await load() } })
            }
            guard let found else {
                throw StampedeError(.corruptEntry, "'\(key)' holds a cached 'no such value', but this loader always has one")
            }
            return found
        }
        // The near cache first, before any closure is built: a hit allocates nothing.
        let cached = try nearValue(Value.self, key: key)
        let found: Value?? = if let cached { cached } else {
            try await decodedLookup(key, as: Value.self, policy: policy, logger: logger, makeLoader: { { try await load() } })
        }
        guard let found, let value = found else {
            throw StampedeError(.corruptEntry, "'\(key)' holds a cached 'no such value', but this loader always has one")
        }
        return value
    }

    /// Removes `key` from the cache; a load in flight for it will not store its result.
    public func invalidate(_ key: String) async throws {
        try await invalidate(key, mode: "remove")
    }

    /// Marks `key` stale now but keeps it for stale serving (stale-while-revalidate,
    /// stale-if-error); a load in flight for it will not store its result.
    public func expire(_ key: String) async throws {
        try await invalidate(key, mode: "expire")
    }

    private func invalidate(_ key: String, mode: String) async throws {
        try Self.validate(key: key)
        // Whatever Redis answers, nothing this process holds of the key outlives the call.
        outageValues.remove(ExactKey(key))
        near?.remove(key)
        let keys = CacheFormat.Keys(namespace: configuration.namespace, key: key)
        _ = try await StampedeError.fromRedis {
            try await client.run(
                CacheScripts.invalidate, keys: keys.all,
                arguments: [
                    RedisArgument(mode), RedisArgument(events.channel),
                    RedisArgument(CacheFormat.Message.invalidated(key: key).payload),
                ])
        }
        // In this process at once, not when the message comes back: lookups in flight are
        // forgotten, and one that read before the script keeps nothing near.
        events.heard(.invalidated, key: key, fill: nil)
    }

    /// Gets ready for the first lookup ahead of time: opens the connections, loads the
    /// scripts into Redis and starts the subscription that wakes waiting callers. Optional:
    /// without it the first lookups do this work themselves.
    public func prepare() async throws {
        _ = try await StampedeError.fromRedis {
            for script in [CacheScripts.leaseGet, CacheScripts.fill, CacheScripts.fail, CacheScripts.invalidate, CacheScripts.set, LeaseWatchdog.renewScript] {
                try await client.send("SCRIPT", "LOAD", RedisArgument(script.source))
            }
        }
        _ = await events.ensureListening(within: configuration.policy.waitTimeout)
    }

    /// Lets background refreshes (and loads past a soft timeout) finish and store their
    /// values, then ends the cache's subscription. Lookups afterwards still work, without
    /// wake-ups. Call it before the process exits. A cancelled caller stops waiting for the
    /// loads (they go on) and ends the subscription at once.
    public func shutdown() async {
        await background.drain()
        await events.close()
    }

    /// As ``shutdown()``, waiting at most `deadline` for the background work.
    ///
    /// - Returns: whether the background work finished in time; what did not goes on, and
    ///   does not store its value if the process exits first.
    @discardableResult
    public func shutdown(within deadline: Duration) async -> Bool {
        let finished = await background.drain(until: clock.now + deadline, clock: clock)
        if !finished {
            logger.warning("background refreshes still running at the shutdown deadline", metadata: ["stampede.deadline": "\(deadline)"])
        }
        await events.close()
        return finished
    }
}
