import Logging
import Synchronization
import Metrics
import StampedeRedis
import Tracing

/// A lock in Redis that survives slow work and says when it is lost.
///
/// ```swift
/// let mutex = RedisMutex(client: client)
/// try await mutex.withLock("invoice:7", options: .init(leaseDuration: .seconds(5))) { lease in
///     try await ledger.post(invoice, fence: lease.fence)
/// }
/// ```
///
/// - Acquiring is one `SET lock token NX PX lease` and a bump of the lock's fence in the
///   same script, so each acquisition gets a growing ``FencingToken``: the larger of the last
///   one plus one and Redis's clock in microseconds, so that it keeps growing after a
///   failover that lost the last acquisitions.
/// - While the body runs a watchdog renews the lease every third of
///   ``LockOptions/leaseDuration``, only if the lock still holds this acquisition's token.
///   If the holder process dies, the lock frees itself when the lease runs out.
/// - When a renewal finds the token gone, or Redis stays unreachable until the lease would
///   have run out, the lease is **lost**: the body's task is cancelled,
///   ``LockOptions/onLeaseLost`` runs, a warning is logged, and `withLock` throws
///   ``StampedeError/Code/leaseLost`` instead of returning the body's result.
/// - Releasing deletes the lock only if it holds this token, and publishes a message that
///   wakes the waiters at once; they fall back to a jittered re-check at most every
///   ``LockOptions/recheckInterval``. Within one process, waiters for one name queue first
///   come, first served, and only the first of them contends in Redis, so a release wakes
///   one task per process rather than every waiter.
///
/// Locks are not reentrant: taking a lock the current task tree already holds throws
/// ``StampedeError/Code/reentrantLock`` rather than waiting for itself.
///
/// Redis keys for lock `NAME`: `PREFIX{NAME}` (the lock), `PREFIX{NAME}:fence`; wake-ups go
/// on channel `PREFIX{NAME}:released`. The hash tag keeps both keys in one cluster slot.
public final class RedisMutex: Sendable {
    public let client: RedisClient
    /// Prepended to every key and channel. Default: `"stampede:lock:"`.
    public let keyPrefix: String
    let logger: Logger
    let metrics: LockMetrics
    /// One contender per lock name in this process; the others queue here.
    let gates = LocalGates()
    let clock: any MonotonicClock
    /// Renews the lease while a body runs.
    let watchdog: LeaseWatchdog
    /// Clean-up that outlives a call: releasing a lock whose acquisition reply was lost.
    let background = BackgroundWork()

    /// The longest lock name accepted, in UTF-8 bytes.
    public static let maximumNameLength = 1024

    @TaskLocal static var heldLocks: Set<String> = []
    /// Where lock spans go, if anywhere.
    let tracer: (any Tracer)?

    /// - Parameters:
    ///   - client: the Redis client the lock uses.
    ///   - keyPrefix: prepended to every key and channel.
    ///   - logger: acquisitions and releases at debug level, a lost lease as a warning.
    ///     Default: a `stampede.lock` logger of the global `LoggingSystem`.
    ///   - metricsFactory: where the counters `stampede.lock.acquired`, `.contended`,
    ///     `.renewals`, `.lost` and the timer `stampede.lock.wait` report. Default: the
    ///     global `MetricsSystem`.
    ///   - tracer: where the spans `stampede.lock.acquire` (the wait included) and
    ///     `stampede.lock.hold` (the body) go, with the lock's name and fence; `nil` for none.
    ///     Default: `nil`.
    public convenience init(
        client: RedisClient,
        keyPrefix: String = "stampede:lock:",
        logger: Logger = Logger(label: "stampede.lock"),
        metricsFactory: (any MetricsFactory)? = nil,
        tracer: (any Tracer)? = nil
    ) {
        self.init(client: client, keyPrefix: keyPrefix, logger: logger, metricsFactory: metricsFactory, clock: SystemClock(), tracer: tracer)
    }

    /// As the public initializer, on `clock` (a test clock in tests).
    init(
        client: RedisClient, keyPrefix: String, logger: Logger, metricsFactory: (any MetricsFactory)?, clock: any MonotonicClock,
        tracer: (any Tracer)? = nil
    ) {
        self.tracer = tracer
        self.client = client
        self.keyPrefix = keyPrefix
        self.logger = logger
        let metrics = LockMetrics(factory: metricsFactory)
        self.metrics = metrics
        self.clock = clock
        self.watchdog = LeaseWatchdog(client: client, clock: clock, renewals: metrics.renewals, logger: logger)
    }

    /// The Redis names behind one lock: `PREFIX{NAME}`, `PREFIX{NAME}:fence`, and the
    /// channel `PREFIX{NAME}:released`.
    package struct Keys: Sendable {
        package let lock: String
        package let fence: String
        package let channel: String

        package init(prefix: String, name: String) {
            lock = "\(prefix){\(name)}"
            fence = lock + ":fence"
            channel = lock + ":released"
        }
    }

    package func keys(for name: String) -> Keys { Keys(prefix: keyPrefix, name: name) }

    /// Runs `body` while holding the lock `name`, waiting up to ``LockOptions/maximumWait``
    /// for it.
    ///
    /// - Returns: what `body` returns.
    /// - Throws: ``StampedeError``: ``StampedeError/Code/waitTimedOut``,
    ///   ``StampedeError/Code/leaseLost`` (the body was cancelled, or finished after the lease
    ///   was gone), ``StampedeError/Code/redisUnavailable``,
    ///   ``StampedeError/Code/invalidArgument``, ``StampedeError/Code/reentrantLock``; or what
    ///   `body` throws.
    public func withLock<Result: Sendable>(
        _ name: String,
        options: LockOptions = LockOptions(),
        _ body: @Sendable (Lease) async throws -> Result
    ) async throws -> Result {
        guard let result = try await run(name, options: options, wait: true, body) else {
            throw StampedeError(.waitTimedOut, "lock '\(name)' stayed held for \(options.maximumWait)")
        }
        return result
    }

    /// Runs `body` under the lock `name` if it is free now; returns `nil` without waiting if
    /// it is held. Otherwise as ``withLock(_:options:_:)``.
    public func tryLock<Result: Sendable>(
        _ name: String,
        options: LockOptions = LockOptions(),
        _ body: @Sendable (Lease) async throws -> Result
    ) async throws -> Result? {
        try await run(name, options: options, wait: false, body)
    }

    private func run<Result: Sendable>(
        _ name: String, options: LockOptions, wait: Bool, _ body: @Sendable (Lease) async throws -> Result
    ) async throws -> Result? {
        try options.validate()
        try Self.validate(name: name)
        let keys = keys(for: name)
        guard !Self.heldLocks.contains(keys.lock) else {
            throw StampedeError(.reentrantLock, "this task already holds lock '\(name)'; locks are not reentrant")
        }
        guard let tracer else { return try await acquireAndHold(name, keys: keys, options: options, wait: wait, body) }
        // Two spans in turn under the caller's: the acquisition (waiting included), then the body.
        let acquiring = SpanOnce(tracer.startAnySpan("stampede.lock.acquire", ofKind: .client))
        acquiring.span.attributes["stampede.lock"] = name
        do {
            let result = try await acquireAndHold(name, keys: keys, options: options, wait: wait) { lease in
                acquiring.span.attributes["stampede.fence"] = lease.fence.value
                acquiring.end()
                return try await tracer.withAnySpan("stampede.lock.hold", ofKind: .internal) { hold in
                    hold.attributes["stampede.lock"] = name
                    hold.attributes["stampede.fence"] = lease.fence.value
                    return try await body(lease)
                }
            }
            acquiring.end()
            return result
        } catch {
            acquiring.end(failedWith: error)
            throw error
        }
    }

    private func acquireAndHold<Result: Sendable>(
        _ name: String, keys: Keys, options: LockOptions, wait: Bool, _ body: @Sendable (Lease) async throws -> Result
    ) async throws -> Result? {
        let waitStart = clock.now
        let deadline = waitStart + options.maximumWait
        // First this process's queue for the name, then Redis.
        let gate = gates.checkOut(keys.lock)
        defer { gates.checkIn(keys.lock) }
        let admitted = wait ? await gate.enter(until: deadline, clock: clock) : gate.tryEnter()
        guard admitted else {
            metrics.contended.increment()
            if wait { throw StampedeError(.waitTimedOut, "lock '\(name)' stayed held for \(options.maximumWait)") }
            return nil
        }
        defer { gate.leave() }
        guard let (lease, acquiredAt) = try await acquire(name, keys: keys, options: options, deadline: wait ? deadline : nil)
        else { return nil }
        metrics.acquired.increment()
        metrics.waitTime.recordNanoseconds(Int64((clock.now - waitStart) / .nanoseconds(1)))
        logger.debug("lock acquired", metadata: ["stampede.lock": "\(name)", "stampede.fence": "\(lease.fence)"])
        return try await Self.$heldLocks.withValue(Self.heldLocks.union([keys.lock])) {
            try await hold(lease, keys: keys, acquiredAt: acquiredAt, options: options, body)
        }
    }

    static func validate(name: String) throws(StampedeError) {
        guard !name.isEmpty else { throw StampedeError(.invalidArgument, "a lock name must not be empty") }
        guard name.utf8.count <= maximumNameLength else {
            throw StampedeError(.invalidArgument, "a lock name may have at most \(maximumNameLength) bytes, got \(name.utf8.count)")
        }
    }

    // MARK: Fencing

    /// Whether `fence` is the newest acquisition of lock `name`: no one has taken the lock since.
    public func isCurrent(_ fence: FencingToken, for name: String) async throws -> Bool {
        try Self.validate(name: name)
        let reply = try await StampedeError.fromRedis { try await client.send("GET", RedisArgument(keys(for: name).fence)) }
        return reply.int == fence.value
    }

    /// Stores `value` at `key` unless a write with a newer fencing token reached `key` first;
    /// the highest token seen is kept beside it, in its hash slot. This is the
    /// storage-side check that makes a stale holder's late write harmless.
    ///
    /// - Returns: `true` when written, `false` when rejected as coming from an older holder.
    /// - Throws: ``StampedeError/Code/invalidArgument`` for a key with a `}` outside a hash
    ///   tag (its fence could not share its hash slot), ``StampedeError/Code/redisUnavailable``.
    public func setIfFenceIsNewest(_ value: [UInt8], at key: String, fence: FencingToken) async throws -> Bool {
        let fenceKey = try Self.fenceKey(ofStored: key)
        let reply = try await StampedeError.fromRedis {
            try await client.run(
                LockScripts.fencedSet, keys: [RedisArgument(key), RedisArgument(fenceKey)],
                arguments: [RedisArgument(bytes: value), RedisArgument(fence.value)])
        }
        return reply.int == 1
    }

    /// Where ``setIfFenceIsNewest(_:at:fence:)`` keeps the newest token written to `key`: in
    /// `key`'s hash slot, so that one script may use both on a Redis Cluster. `key:fence`
    /// when `key` has a hash tag (`{order:7}:total` → `{order:7}:total:fence`), else
    /// `{key}:fence` (`invoice:7` → `{invoice:7}:fence`).
    package static func fenceKey(ofStored key: String) throws(StampedeError) -> String {
        if HashSlot.hasHashTag(key) { return key + ":fence" }
        guard !key.contains("}") else {
            throw StampedeError(.invalidArgument, "key '\(key)' has a '}' outside a hash tag, so no fence key can share its hash slot; give it a hash tag such as {\(String(key.filter { $0 != "}" }))}")
        }
        return "{" + key + "}:fence"
    }
}

extension Duration {
    /// Whole milliseconds, at least 1: for leases and waits, where 0 would mean "none".
    var milliseconds: Int { max(1, wholeMilliseconds) }

    /// Whole milliseconds, exactly: for windows, where zero means no window at all.
    var wholeMilliseconds: Int {
        let (seconds, attoseconds) = components
        return Int(seconds) * 1000 + Int(attoseconds / 1_000_000_000_000_000)
    }
}

/// A span ended once, whichever of its ends comes first.
private final class SpanOnce: Sendable {
    let span: any Span
    private let ended = Mutex(false)

    init(_ span: any Span) {
        self.span = span
    }

    func end(failedWith error: (any Error)? = nil) {
        guard ended.withLock({ ended in defer { ended = true }; return !ended }) else { return }
        if let error {
            span.recordError(error)
            span.setStatus(.init(code: .error))
        }
        span.end()
    }
}
