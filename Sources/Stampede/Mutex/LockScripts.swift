import StampedeRedis

/// The Lua scripts behind ``RedisMutex``. Each is one round trip and atomic on the server.
/// Keys go as `KEYS`, never into the source; lock and fence share a hash tag, so one script
/// touches one cluster slot. The lock is read with `pcall`: a key of another type under the
/// lock's name is not our token, and must not turn into a Redis error.
enum LockScripts {
    /// KEYS: lock, fence. ARGV: token, lease ms.
    /// Returns `{1, fence}` when acquired, `{0, pttl}` when held by someone else.
    ///
    /// Each acquisition sets the fence to `max(old + 1, Redis's clock in microseconds)`: it
    /// grows with every acquisition, and after a failover that lost the last increments, or
    /// a fence that expired or was deleted, it never comes back at a value an earlier holder
    /// already had. Everything it could fail on is checked before it writes, so that it never
    /// leaves the lock taken without handing out a fence: a lock without expiry was not set
    /// by an acquire (every one of ours expires) and is taken over; a fence that is not a
    /// number of ours (another type, not digits, 2^53 or more, which Lua's numbers do not
    /// hold exactly) is replaced.
    static let acquire = RedisScript("""
        local old = redis.pcall('GET', KEYS[2])
        if type(old) ~= 'string' or #old > 16 or not string.match(old, '^%d+$') or tonumber(old) >= 9007199254740992 then
          old = nil
        end
        if not redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
          local ttl = redis.call('PTTL', KEYS[1])
          if ttl >= 0 then return {0, ttl} end
          redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
        end
        local t = redis.call('TIME')
        local fence = tonumber(t[1]) * 1000000 + tonumber(t[2])
        if old and tonumber(old) >= fence then fence = tonumber(old) + 1 end
        -- As text: Lua would write a number this large in exponent notation. An expiry
        -- someone gave the fence stays, as INCR would keep it.
        redis.call('SET', KEYS[2], string.format('%d', fence), 'KEEPTTL')
        return {1, fence}
        """)

    /// After an acquire whose reply was lost: is the lock ours, and with which fence?
    /// KEYS: lock, fence. ARGV: token. Returns the fence, or false when not ours.
    static let confirm = RedisScript("""
        if redis.pcall('GET', KEYS[1]) == ARGV[1] then
          local fence = redis.pcall('GET', KEYS[2])
          return type(fence) == 'string' and tonumber(fence) or 0
        end
        return false
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
