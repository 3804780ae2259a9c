import Logging
import StampedeRedis

/// A lock over several independent Redis masters: held when a majority of them hold it.
///
/// One Redis is a single point of failure for a ``RedisMutex``; Redlock keeps working while a
/// minority of its masters are down. Acquiring sets the lock (`SET key token NX PX lease`) on
/// every master at once; it is held when a majority answered OK, and only for the
/// **validity time**: the lease minus the time acquiring took minus an allowance for clock
/// drift (1% of the lease plus 2 ms). Otherwise the lock is released on every master and
/// acquisition is retried after a random delay.
///
/// Its clients must be **independent** masters: separate servers (or separate clusters)
/// that share no data and fail over on their own. The masters of one Redis Cluster are not
/// independent in that sense (a key lives on one of them), so Redlock over a cluster is one
/// ``RedisMutex`` per cluster, each given a cluster client.
///
/// Redlock gives **no fencing token**: there is no single counter that every master agrees
/// on. A holder that is paused past the validity time cannot be told apart from the next
/// holder by the storage it writes to. Use ``RedisMutex`` (with its fencing tokens) where
/// a late write would corrupt data; use Redlock where the lock only saves duplicate work.
/// Nor does a Redlock lease renew itself: ``withLock(_:leaseDuration:_:)`` throws
/// ``StampedeError/Code/leaseLost`` when the body outlived the validity time.
public final class Redlock: Sendable {
    public let clients: [RedisClient]
    public let keyPrefix: String
    /// Attempts before giving up with ``StampedeError/Code/noQuorum``. Default: 3.
    public let attempts: Int
    /// The random delay between attempts is at most this. Default: 200 ms.
    public let retryDelay: Duration
    let logger: Logger

    private static let release = RedisScript("""
        if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
        return 0
        """)

    /// - Parameter clients: one client per independent master (not replicas of one another).
    public init(
        clients: [RedisClient],
        keyPrefix: String = "stampede:redlock:",
        attempts: Int = 3,
        retryDelay: Duration = .milliseconds(200),
        logger: Logger = Logger(label: "stampede.redlock")
    ) throws(StampedeError) {
        guard !clients.isEmpty else { throw StampedeError(.invalidArgument, "Redlock needs at least one master") }
        guard attempts >= 1 else { throw StampedeError(.invalidArgument, "attempts must be at least 1, got \(attempts)") }
        guard retryDelay >= .zero else { throw StampedeError(.invalidArgument, "retryDelay must not be negative") }
        self.clients = clients
        self.keyPrefix = keyPrefix
        self.attempts = attempts
        self.retryDelay = retryDelay
        self.logger = logger
    }

    /// How many masters must hold the lock.
    public var quorum: Int { clients.count / 2 + 1 }

    /// A Redlock acquisition.
    public struct Lease: Sendable {
        public let name: String
        public let token: String
        /// Until when (local clock) the lock is safely held.
        public let validUntil: ContinuousClock.Instant
    }

    /// Runs `body` while a majority of masters hold the lock `name`.
    ///
    /// - Throws: ``StampedeError/Code/noQuorum`` when no attempt reached a majority within
    ///   the validity time; ``StampedeError/Code/leaseLost`` when `body` ran past the
    ///   validity time (its result is not returned); what `body` throws.
    public func withLock<Result>(
        _ name: String, leaseDuration: Duration = .seconds(10), _ body: (Lease) async throws -> Result
    ) async throws -> Result {
        try RedisMutex.validate(name: name)
        guard leaseDuration >= .milliseconds(10) else {
            throw StampedeError(.invalidArgument, "leaseDuration must be at least 10 ms, got \(leaseDuration)")
        }
        let lease = try await acquire(name, leaseDuration: leaseDuration)
        let result: Result
        do {
            result = try await body(lease)
        } catch {
            await releaseEverywhere(lease)
            throw error
        }
        await releaseEverywhere(lease)
        guard ContinuousClock.now < lease.validUntil else {
            throw StampedeError(.leaseLost, "Redlock '\(name)': the body ran past the validity time")
        }
        return result
    }

    func acquire(_ name: String, leaseDuration: Duration) async throws(StampedeError) -> Lease {
        let clock = ContinuousClock()
        let key = keyPrefix + name
        let drift = leaseDuration * 0.01 + .milliseconds(2)
        var locked = 0
        for attempt in 1...attempts {
            let token = Stampede.Lease.randomToken()
            let start = clock.now
            locked = await withTaskGroup(of: Bool.self) { group in
                for client in clients {
                    group.addTask {
                        let reply = try? await client.send(
                            "SET", RedisArgument(key), RedisArgument(token), "NX", "PX", RedisArgument(leaseDuration.milliseconds))
                        return reply == .simpleString("OK")
                    }
                }
                return await group.reduce(0) { $0 + ($1 ? 1 : 0) }
            }
            let validity = leaseDuration - (clock.now - start) - drift
            let lease = Lease(name: name, token: token, validUntil: start + validity)
            if locked >= quorum && validity > .zero { return lease }
            await releaseEverywhere(lease)
            logger.debug("Redlock attempt failed", metadata: [
                "stampede.lock": "\(name)", "stampede.locked": "\(locked)", "stampede.attempt": "\(attempt)",
            ])
            if attempt < attempts { try? await Task.sleep(for: retryDelay * Double.random(in: 0...1)) }
        }
        throw StampedeError(
            .noQuorum, "Redlock '\(name)': \(locked) of \(clients.count) masters locked at the last attempt; \(quorum) needed")
    }

    /// Deletes our token on every master, reachable or not (best effort).
    private func releaseEverywhere(_ lease: Lease) async {
        let key = keyPrefix + lease.name
        await withTaskGroup(of: Void.self) { group in
            for client in clients {
                group.addTask {
                    _ = try? await client.run(Self.release, keys: [RedisArgument(key)], arguments: [RedisArgument(lease.token)])
                }
            }
        }
    }
}
