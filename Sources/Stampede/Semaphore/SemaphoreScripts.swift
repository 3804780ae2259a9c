import StampedeRedis

/// The semaphore's scripts. Per semaphore `NAME`, all under one hash tag: `PREFIX{NAME}`, a
/// sorted set of the permits held (each holder's token, scored by when its lease ends, in
/// Redis's milliseconds), `PREFIX{NAME}:fence`, the fence counter, `PREFIX{NAME}:permits`,
/// the permit count when set at run time; releases are published on `PREFIX{NAME}:released`.
enum SemaphoreScripts {
    /// Drops the permits whose leases ended (never before), then takes one if fewer than the
    /// permit count are held, bumping the fence to `max(last + 1, Redis's clock in µs)`.
    /// KEYS: holders, fence, permits. ARGV: token, lease ms, default permit count.
    /// Returns `{1, fence}` when taken, `{0, ms until the soonest lease ends}` when all are held.
    static let acquire = RedisScript("""
        local t = redis.call('TIME')
        local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
        redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
        local permits = tonumber(redis.call('GET', KEYS[3]) or ARGV[3]) or tonumber(ARGV[3])
        if redis.call('ZCARD', KEYS[1]) >= permits then
          local soonest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
          local wait = 1
          if soonest[2] then wait = math.max(1, tonumber(soonest[2]) - now) end
          return {0, wait}
        end
        local ends = now + tonumber(ARGV[2])
        redis.call('ZADD', KEYS[1], ends, ARGV[1])
        local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
        redis.call('PEXPIREAT', KEYS[1], tonumber(last[2]))
        local fence = tonumber(t[1]) * 1000000 + tonumber(t[2])
        local old = tonumber(redis.call('GET', KEYS[2]) or '0') or 0
        if old >= fence then fence = old + 1 end
        redis.call('SET', KEYS[2], string.format('%d', fence))
        return {1, fence}
        """)

    /// KEYS: holders. ARGV: token, lease ms. Extends the permit if it is still held (its lease
    /// has not ended): 1; else 0.
    static let renew = RedisScript("""
        local t = redis.call('TIME')
        local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
        local ends = redis.call('ZSCORE', KEYS[1], ARGV[1])
        if not ends or tonumber(ends) <= now then return 0 end
        redis.call('ZADD', KEYS[1], 'XX', now + tonumber(ARGV[2]), ARGV[1])
        local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
        redis.call('PEXPIREAT', KEYS[1], tonumber(last[2]))
        return 1
        """)

    /// KEYS: holders. ARGV: token, channel. Gives the permit back and wakes the waiters: 1;
    /// 0 when it was no longer held.
    static let release = RedisScript("""
        local removed = redis.call('ZREM', KEYS[1], ARGV[1])
        redis.call('PUBLISH', ARGV[2], 'released')
        return removed
        """)

    /// KEYS: holders. The permits whose leases have not ended.
    static let held = RedisScript("""
        local t = redis.call('TIME')
        local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
        return redis.call('ZCOUNT', KEYS[1], '(' .. now, '+inf')
        """)
}
