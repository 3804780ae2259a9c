import StampedeRedis

/// The Lua scripts behind ``RedisMutex``. Each is one round trip and atomic on the server.
/// Keys go as `KEYS`, never into the source; lock and fence share a hash tag, so one script
/// touches one cluster slot. The lock is read with `pcall`: a key of another type under the
/// lock's name is not our token, and must not turn into a Redis error.
enum LockScripts {
    /// KEYS: lock, fence. ARGV: token, lease ms.
    /// Returns `{1, fence}` when acquired, `{0, pttl}` when held by someone else.
    static let acquire = RedisScript("""
        if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
          return {1, redis.call('INCR', KEYS[2])}
        end
        return {0, redis.call('PTTL', KEYS[1])}
        """)

    /// After an acquire whose reply was lost: is the lock ours, and with which fence?
    /// KEYS: lock, fence. ARGV: token. Returns the fence, or false when not ours.
    static let confirm = RedisScript("""
        if redis.pcall('GET', KEYS[1]) == ARGV[1] then
          return tonumber(redis.call('GET', KEYS[2]) or '0')
        end
        return false
        """)

    /// KEYS: lock. ARGV: token, lease ms. Returns 1 when renewed, 0 when the token is gone.
    static let renew = RedisScript("""
        if redis.pcall('GET', KEYS[1]) == ARGV[1] then
          return redis.call('PEXPIRE', KEYS[1], ARGV[2])
        end
        return 0
        """)

    /// KEYS: lock. ARGV: token, release channel. Deletes only our own lock and wakes the
    /// waiters. Returns 1 when released, 0 when the token was gone (the lease was lost).
    static let release = RedisScript("""
        if redis.pcall('GET', KEYS[1]) == ARGV[1] then
          redis.call('DEL', KEYS[1])
          redis.call('PUBLISH', ARGV[2], '')
          return 1
        end
        return 0
        """)

    /// Storage-side fencing: stores `value` under KEYS[1] only if `token` is at least the
    /// highest token this key has seen (kept in KEYS[2]). Returns 1 when written, 0 when
    /// rejected as coming from an older holder.
    static let fencedSet = RedisScript("""
        local highest = tonumber(redis.call('GET', KEYS[2]) or '0')
        local token = tonumber(ARGV[2])
        if token < highest then return 0 end
        redis.call('SET', KEYS[2], ARGV[2])
        redis.call('SET', KEYS[1], ARGV[1])
        return 1
        """)
}
