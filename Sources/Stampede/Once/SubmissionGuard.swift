import Logging
import StampedeRedis

/// Runs a body once per key within a window, across every process: a retried or
/// double-clicked request runs once, and the callers after it get its stored result.
///
/// ```swift
/// let submissions = SubmissionGuard(client: redis, window: .seconds(3600))
/// let receipt: Receipt = try await submissions.once("order:\(idempotencyKey)") {
///     try await payments.charge(order)
/// }
/// ```
///
/// - The first caller takes a lease on the key (a ``RedisMutex`` lock, renewed while the body
///   runs) and runs the body. On success its result is stored (as the codec encodes it) for
///   the window, only if the caller still holds the lease: a holder that lost it cannot store
///   its result (``StampedeError/Code/leaseLost``). On failure nothing is stored and the key
///   is free again.
/// - A caller that comes while the body runs gets ``StampedeError/Code/inProgress``, or with
///   ``WhileRunning/wait(upTo:)`` waits for the first to end and gets its result (or runs the
///   body itself if the first failed).
/// - Callers within the window get the stored result without running anything.
/// - Keys: `PREFIX{KEY}` (the lease), `PREFIX{KEY}:fence`, `PREFIX{KEY}:result`; one hash tag.
public final class SubmissionGuard: Sendable {
    /// What a caller does while another caller runs the body for the same key.
    public enum WhileRunning: Sendable {
        /// Throw ``StampedeError/Code/inProgress`` at once.
        case reject
        /// Wait for it, at most this long, then take its result.
        case wait(upTo: Duration)
    }

    public let client: RedisClient
    /// How long a result is kept and given to later callers.
    public let window: Duration
    let codec: any CacheCodec
    let mutex: RedisMutex
    let leaseDuration: Duration

    /// - Parameters:
    ///   - window: how long a successful result answers later callers of its key.
    ///   - leaseDuration: the body's lease, renewed while it runs. Default: 10 s.
    ///   - codec: how results become bytes. Default: JSON.
    public init(
        client: RedisClient, keyPrefix: String = "stampede:once:", window: Duration, leaseDuration: Duration = .seconds(10),
        codec: any CacheCodec = JSONCacheCodec(), logger: Logger = Logger(label: "stampede.once")
    ) {
        self.client = client
        self.window = window
        self.codec = codec
        self.leaseDuration = leaseDuration
        self.mutex = RedisMutex(client: client, keyPrefix: keyPrefix, logger: logger)
    }

    /// KEYS: lease, result. ARGV: token, result, window ms. Stores the result only while the
    /// lease is the caller's: 1; else 0.
    static let storeIfHeld = RedisScript("""
        if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
        redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[3])
        return 1
        """)

    /// The result of the first successful `body` for `key` within the window; runs `body` if
    /// there is none and no one else is running it.
    ///
    /// - Throws: ``StampedeError`` (``StampedeError/Code/inProgress``,
    ///   ``StampedeError/Code/waitTimedOut``, ``StampedeError/Code/leaseLost`` when the body
    ///   finished after losing its lease, ``StampedeError/Code/redisUnavailable``,
    ///   ``StampedeError/Code/corruptEntry`` for a stored result that is not a `Result`), or
    ///   what `body` throws.
    public func once<Result: Codable & Sendable>(
        _ key: String, as type: Result.Type = Result.self, whileRunning: WhileRunning = .reject,
        _ body: @escaping @Sendable () async throws -> Result
    ) async throws -> Result {
        try RedisMutex.validate(name: key)
        guard window > .zero else { throw StampedeError(.invalidArgument, "a submission guard needs a positive window, got \(window)") }
        let keys = mutex.keys(for: key)
        let resultKey = keys.lock + ":result"
        if let stored = try await storedResult(Result.self, at: resultKey) { return stored }
        let options = LockOptions(leaseDuration: leaseDuration, maximumWait: { if case .wait(let limit) = whileRunning { limit } else { .zero } }())
        let run: @Sendable (Lease) async throws -> Result = { [self] lease in
            // The first caller may have finished between the read above and the lease.
            if let stored = try await storedResult(Result.self, at: resultKey) { return stored }
            let result = try await body()
            let stored = try await StampedeError.fromRedis {
                try await client.run(
                    Self.storeIfHeld, keys: [RedisArgument(keys.lock), RedisArgument(resultKey)],
                    arguments: [RedisArgument(lease.token), RedisArgument(bytes: try codec.encode(result)), RedisArgument(window.milliseconds)])
            }
            guard stored.int == 1 else {
                throw StampedeError(.leaseLost, "the lease on '\(key)' was lost before the result was stored")
            }
            return result
        }
        switch whileRunning {
        case .reject:
            guard let result = try await mutex.tryLock(key, options: options, run) else {
                throw StampedeError(.inProgress, "another caller is running '\(key)'")
            }
            return result
        case .wait:
            return try await mutex.withLock(key, options: options, run)
        }
    }

    private func storedResult<Result: Codable & Sendable>(_ type: Result.Type, at key: String) async throws -> Result? {
        let reply = try await StampedeError.fromRedis { try await client.send("GET", RedisArgument(key)) }
        guard let bytes = reply.bytes else { return nil }
        do {
            return try codec.decode(Result.self, from: bytes)
        } catch {
            throw StampedeError(.corruptEntry, "the stored result of '\(key)' is not a \(Result.self): \(error)")
        }
    }
}
