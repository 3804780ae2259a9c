import Logging
import Metrics
@testable import Stampede
import StampedeRedis

extension RedisMutex {
    /// A mutex on `clock` (a test clock), without logging.
    static func onClock(
        _ clock: any MonotonicClock, client: RedisClient, keyPrefix: String, metricsFactory: (any MetricsFactory)? = nil
    ) -> RedisMutex {
        RedisMutex(client: client, keyPrefix: keyPrefix, logger: Logger(label: "stampede.lock", factory: { _ in SwiftLogNoOpLogHandler() }),
                   metricsFactory: metricsFactory, clock: clock)
    }
}

/// Lets `duration` pass for `key` on Redis's side, whose clock a test clock cannot move:
/// its remaining expiry shrinks by `duration`, and a key whose expiry that reaches is
/// deleted, as Redis would have. A key without expiry, or none, is left as it is.
func age(_ client: RedisClient, _ key: String, by duration: Duration) async throws {
    try await client.send("EVAL", """
        local left = redis.call('PTTL', KEYS[1])
        if left < 0 then return left end
        left = left - tonumber(ARGV[1])
        if left > 0 then redis.call('PEXPIRE', KEYS[1], left) else redis.call('DEL', KEYS[1]) end
        return left
        """, "1", RedisArgument(key), RedisArgument(duration.wholeMilliseconds))
}
