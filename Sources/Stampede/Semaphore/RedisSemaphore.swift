import Logging
import Metrics
import StampedeRedis

/// A fleet-wide concurrency limit: at most N holders of a name at a time, across every
/// process sharing a Redis, each permit a lease with a ``RedisMutex``'s safety.
///
/// ```swift
/// let gateway = RedisSemaphore(client: redis, permits: 8)
/// try await gateway.withPermit("payments-api") { permit in
///     try await paymentsAPI.charge(order, fence: permit.fence)
/// }
/// ```
///
/// - A permit is a random token in a sorted set scored by when its lease ends. A watchdog
///   renews it every third of the lease while the body runs; a lost permit (a pause, a
///   partition) cancels the body, runs ``LockOptions/onLeaseLost`` and throws
///   ``StampedeError/Code/leaseLost``. The permits of a holder that died come back when
///   their leases end, never before.
/// - Every permit carries a growing ``FencingToken`` (`max(last + 1, Redis's clock in µs)`).
/// - Waiters are woken by the message a release publishes, with a jittered re-check as the
///   fallback; in one process they queue first come, first served and only the first of
///   them contends in Redis.
/// - ``setPermits(_:for:)`` changes a name's permit count at run time, for every process;
///   holders beyond a lowered count keep their permits until they release them.
/// - Keys: `PREFIX{NAME}` (the permits), `PREFIX{NAME}:fence`, `PREFIX{NAME}:permits`; one
///   hash tag, so a semaphore lives on one node of a Redis Cluster.
public final class RedisSemaphore: Sendable {
    public let client: RedisClient
    public let keyPrefix: String
    /// The permit count of a name whose count was never set with ``setPermits(_:for:)``.
    public let permits: Int
    let logger: Logger
    let metrics: LockMetrics
    let gates = LocalGates()
    let clock: any MonotonicClock
    let watchdog: LeaseWatchdog

    /// - Parameters:
    ///   - permits: how many holders a name allows, unless set otherwise at run time.
    ///   - metricsFactory: where `stampede.semaphore.acquired`, `.contended`, `.renewals`,
    ///     `.lost` and the timer `stampede.semaphore.wait` report.
    public convenience init(
        client: RedisClient, keyPrefix: String = "stampede:semaphore:", permits: Int,
        logger: Logger = Logger(label: "stampede.semaphore"), metricsFactory: (any MetricsFactory)? = nil
    ) {
        self.init(client: client, keyPrefix: keyPrefix, permits: permits, logger: logger, metricsFactory: metricsFactory, clock: SystemClock())
    }

    /// As the public initializer, on `clock` (a test clock in tests).
    init(client: RedisClient, keyPrefix: String, permits: Int, logger: Logger, metricsFactory: (any MetricsFactory)?, clock: any MonotonicClock) {
        self.client = client
        self.keyPrefix = keyPrefix
        self.permits = permits
        self.logger = logger
        let metrics = LockMetrics(factory: metricsFactory, prefix: "stampede.semaphore")
        self.metrics = metrics
        self.clock = clock
        self.watchdog = LeaseWatchdog(client: client, clock: clock, renewals: metrics.renewals, logger: logger)
    }

    /// The Redis names behind one semaphore.
    package struct Keys: Sendable {
        package let holders: String
        package let fence: String
        package let permits: String
        package let channel: String

        package init(prefix: String, name: String) {
            holders = prefix + "{" + name + "}"
            fence = holders + ":fence"
            permits = holders + ":permits"
            channel = holders + ":released"
        }
    }

    package func keys(for name: String) -> Keys { Keys(prefix: keyPrefix, name: name) }

    /// Runs `body` holding one of the permits of `name`, waiting up to
    /// ``LockOptions/maximumWait`` for one; gives it back afterwards.
    ///
    /// - Throws: ``StampedeError`` (``StampedeError/Code/waitTimedOut``,
    ///   ``StampedeError/Code/leaseLost``, ``StampedeError/Code/redisUnavailable``,
    ///   ``StampedeError/Code/invalidArgument``), or what `body` throws.
    public func withPermit<Result: Sendable>(
        _ name: String, options: LockOptions = LockOptions(), _ body: @Sendable (Lease) async throws -> Result
    ) async throws -> Result {
        guard let result = try await run(name, options: options, wait: true, body) else {
            throw StampedeError(.waitTimedOut, "no permit of '\(name)' came free within \(options.maximumWait)")
        }
        return result
    }

    /// Runs `body` holding a permit of `name` if one is free now; `nil` without waiting if not.
    public func tryPermit<Result: Sendable>(
        _ name: String, options: LockOptions = LockOptions(), _ body: @Sendable (Lease) async throws -> Result
    ) async throws -> Result? {
        try await run(name, options: options, wait: false, body)
    }

    /// Sets how many permits `name` allows, for every process, until set again; `nil` goes
    /// back to ``permits``. Waiters are woken to try again.
    public func setPermits(_ count: Int?, for name: String) async throws {
        try RedisMutex.validate(name: name)
        if let count, count < 1 { throw StampedeError(.invalidArgument, "a semaphore needs at least 1 permit, got \(count)") }
        let keys = keys(for: name)
        _ = try await StampedeError.fromRedis {
            if let count {
                try await client.send("SET", RedisArgument(keys.permits), RedisArgument(count))
            } else {
                try await client.send("DEL", RedisArgument(keys.permits))
            }
            try await client.send("PUBLISH", RedisArgument(keys.channel), "permits")
        }
    }

    private func run<Result: Sendable>(
        _ name: String, options: LockOptions, wait: Bool, _ body: @Sendable (Lease) async throws -> Result
    ) async throws -> Result? {
        try options.validate()
        try RedisMutex.validate(name: name)
        guard permits >= 1 else { throw StampedeError(.invalidArgument, "a semaphore needs at least 1 permit, got \(permits)") }
        let keys = keys(for: name)
        let waitStart = clock.now
        guard let (lease, acquiredAt) = try await acquire(name, keys: keys, options: options, wait: wait, deadline: waitStart + options.maximumWait) else {
            return nil
        }
        metrics.acquired.increment()
        metrics.waitTime.recordNanoseconds(Int64((clock.now - waitStart) / .nanoseconds(1)))
        return try await hold(lease, keys: keys, acquiredAt: acquiredAt, options: options, body)
    }

    /// Takes a permit: in this process, behind the callers that came first (only the first
    /// of them contends in Redis); then in Redis, woken by releases.
    private func acquire(
        _ name: String, keys: Keys, options: LockOptions, wait: Bool, deadline: ContinuousClock.Instant
    ) async throws -> (Lease, ContinuousClock.Instant)? {
        let gate = gates.checkOut(keys.holders)
        defer { gates.checkIn(keys.holders) }
        let admitted = wait ? await gate.enter(until: deadline, clock: clock) : gate.tryEnter()
        guard admitted else {
            metrics.contended.increment()
            if wait { throw StampedeError(.waitTimedOut, "no permit of '\(name)' came free within \(options.maximumWait)") }
            return nil
        }
        // The gate is for the wait only: once a permit is taken, the next caller may try.
        defer { gate.leave() }
        let leaseWait = LeaseWait(client: client, clock: clock, channel: keys.channel, recheckInterval: options.recheckInterval)
        return try await leaseWait.lease(
            until: wait ? deadline : nil, contended: { metrics.contended.increment() },
            timedOut: { StampedeError(.waitTimedOut, "no permit of '\(name)' came free within \(options.maximumWait)") }
        ) { () throws(StampedeError) in try await self.attempt(name, keys: keys, options: options) }
    }

    private func attempt(_ name: String, keys: Keys, options: LockOptions) async throws(StampedeError) -> LeaseAttempt {
        let token = Lease.randomToken()
        let reply = try await StampedeError.fromRedis {
            try await client.run(
                SemaphoreScripts.acquire,
                keys: [RedisArgument(keys.holders), RedisArgument(keys.fence), RedisArgument(keys.permits)],
                arguments: [RedisArgument(token), RedisArgument(options.leaseDuration.milliseconds), RedisArgument(permits)])
        }
        guard case .array(let parts) = reply, parts.count == 2, let flag = parts[0].int, let number = parts[1].int else {
            throw StampedeError(.redisUnavailable, "unexpected reply to the semaphore's acquire script: \(reply)")
        }
        if flag == 1 { return .granted(Lease(name: name, token: token, fence: FencingToken(number))) }
        return .held(retryWithin: .milliseconds(max(number, 1)))
    }

    /// Runs `body` under the watchdog; gives the permit back afterwards.
    private func hold<Result: Sendable>(
        _ lease: Lease, keys: Keys, acquiredAt: ContinuousClock.Instant, options: LockOptions,
        _ body: @Sendable (Lease) async throws -> Result
    ) async throws -> Result {
        try await watchdog.holdThenRelease(
            lease, lockKey: keys.holders, renewal: SemaphoreScripts.renew, duration: options.leaseDuration, acquiredAt: acquiredAt,
            release: {
                try await client.run(
                    SemaphoreScripts.release, keys: [RedisArgument(keys.holders)],
                    arguments: [RedisArgument(lease.token), RedisArgument(keys.channel)]).int == 1
            },
            lost: { await lost($0, options: options) }, body)
    }

    private func lost(_ loss: LeaseLoss, options: LockOptions) async {
        metrics.lost.increment()
        logger.warning("permit lost", metadata: [
            "stampede.semaphore": "\(loss.lease.name)", "stampede.fence": "\(loss.lease.fence)", "stampede.reason": "\(loss.reason)",
        ])
        await options.onLeaseLost?(loss)
    }

    /// How many permits of `name` are held now (leases not yet ended).
    public func permitsHeld(_ name: String) async throws -> Int {
        try RedisMutex.validate(name: name)
        let keys = keys(for: name)
        return try await StampedeError.fromRedis {
            try await client.run(SemaphoreScripts.held, keys: [RedisArgument(keys.holders)]).int ?? 0
        }
    }
}
