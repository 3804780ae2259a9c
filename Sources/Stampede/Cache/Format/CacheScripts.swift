import StampedeRedis

/// The cache's Lua scripts: one round trip per decision, on Redis's clock (`TIME`), so that
/// nodes with skewed clocks agree on what is fresh. They write and read what
/// ``CacheFormat`` describes. Keys: KEYS[1] entry, KEYS[2] lock, KEYS[3] fence.
///
/// The fence expires too (a day after its last use, or after its entry), so that keys that
/// are never asked for again leave nothing behind. Each lease and invalidation sets it to
/// at least Redis's clock in microseconds, so a fence that expired, or that a failover took
/// back to an earlier value, comes back above any value a loader holds, whose fill is then
/// rejected.
enum CacheScripts {
    /// How long a fence outlives its last use or its entry.
    static let fenceKeptMilliseconds = 86_400_000

    /// Lua helpers the scripts share. Every key of ours may hold anything a user or another
    /// program put there, so they read with `pcall` or after `TYPE`, and check before they
    /// write: a script that failed halfway would leave a lease taken and nothing cached.
    ///
    /// - `readFence(key)`: the fence as a number, or `nil` when absent or not one of ours
    ///   (another type, not digits, or 2^53 or more, which Lua's numbers do not hold exactly).
    /// - `bump(key, now ms)`: sets the fence to `max(old + 1, Redis's clock in µs)` and keeps
    ///   it for ``fenceKeptMilliseconds``. A fence that expired, or that a failover took back
    ///   to an earlier value, never comes back at a value a loader already holds; a foreign
    ///   value is replaced.
    /// - `parseMeta(m)`: the packed metadata's fields as digit strings (fresh-until,
    ///   stale-until, load ms, negative), or `nil` when it is unreadable or a number has
    ///   more than ``CacheFormat/maximumDigits`` digits (so that Lua and Swift read it as
    ///   the same exact integer).
    /// - `holds(lock, token)`: whether the lock holds `token`.
    private static let helpers = """
        local function readFence(key)
          local v = redis.pcall('GET', key)
          if type(v) ~= 'string' or #v > 16 or not string.match(v, '^%d+$') then return nil end
          local fence = tonumber(v)
          if fence >= 9007199254740992 then return nil end
          return fence
        end
        local function bump(key, now)
          local fence = now * 1000
          local old = readFence(key)
          if old and old >= fence then fence = old + 1 end
          -- As text: Lua would write a number this large in exponent notation.
          redis.call('SET', key, string.format('%d', fence), 'PX', \(fenceKeptMilliseconds))
          return fence
        end
        local function parseMeta(m)
          if type(m) ~= 'string' then return nil end
          local fu, su, d, n = string.match(m, '^2:(%d+):(%d+):(%d+):([01])$')
          if not fu or #fu > \(CacheFormat.maximumDigits) or #su > \(CacheFormat.maximumDigits) or #d > \(CacheFormat.maximumDigits) then return nil end
          return fu, su, d, n
        end
        local function holds(lock, token)
          return redis.pcall('GET', lock) == token
        end
        """

    /// ARGV: token, lease ms, early-refresh factor (-beta * ln(rand), 0 for none).
    ///
    /// Returns `{state, now, role, fence, lockTTL, repaired, v, f, fu, su, d, n}`:
    /// - state: "fresh", "stale" (past fresh, before stale-until) or "miss";
    /// - role: "none" (fresh, no refresh wanted), "leader" (took the lease; fence is the new
    ///   fence) or "follower" (someone else holds it; lockTTL is its remaining ms);
    /// - repaired: what was found foreign or unreadable and replaced, as bits: 1 the entry
    ///   (deleted: a miss), 2 the lock (it had no expiry, so no lease of ours: taken over),
    ///   4 the fence (replaced by a new one);
    /// - the entry's fields when there is an entry (fu, su, d of at most 15 digits).
    static let leaseGet = RedisScript("""
        \(helpers)
        local t = redis.call('TIME')
        local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
        local repaired = 0
        local e = false
        local kind = redis.call('TYPE', KEYS[1])['ok']
        if kind == 'hash' then
          local h = redis.call('HMGET', KEYS[1], '\(CacheFormat.valueField)', '\(CacheFormat.fenceField)', '\(CacheFormat.metadataField)')
          local fu, su, d, n = parseMeta(h[3])
          if h[1] and fu then
            e = {'2', h[1], h[2], fu, su, d, n}
          else
            repaired = 1
          end
        elseif kind ~= 'none' then
          repaired = 1
        end
        if repaired == 1 then redis.call('DEL', KEYS[1]) end
        local state = 'miss'
        if e then
          local fu = tonumber(e[4])
          if now < fu then
            state = 'fresh'
            local early = tonumber(ARGV[3])
            local delta = tonumber(e[6])
            if early <= 0 or now + delta * early < fu then
              return {state, now, 'none', 0, 0, repaired, e[2], e[3], e[4], e[5], e[6], e[7]}
            end
          elseif now < tonumber(e[5]) then
            state = 'stale'
          end
        end
        local role = 'follower'
        local fence = 0
        local ttl = 0
        local leased = redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', ARGV[2])
        if not leased then
          ttl = redis.call('PTTL', KEYS[2])
          if ttl < 0 then
            -- Every lease of ours expires: a lock without expiry (left by hand, restored,
            -- PERSISTed, another type) has no loader behind it that anyone could wait for.
            redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[2])
            leased = true
            ttl = 0
            repaired = repaired + 2
          end
        end
        if leased then
          role = 'leader'
          if redis.call('EXISTS', KEYS[3]) == 1 and not readFence(KEYS[3]) then repaired = repaired + 4 end
          fence = bump(KEYS[3], now)
        end
        if e then
          return {state, now, role, fence, ttl, repaired, e[2], e[3], e[4], e[5], e[6], e[7]}
        end
        return {state, now, role, fence, ttl, repaired}
        """)

    /// Stores a fill if nothing took over or invalidated since the lease was taken. Either
    /// way frees the lease (if still ours) and tells the waiters. A stored value of at most
    /// ``CacheFormat/largestValueInMessage`` bytes travels in the message (see
    /// ``CacheFormat/Message``), so that waiters need not read it back; a larger one sends
    /// the plain message.
    /// ARGV: fence, value, fresh ms, stale ms (kept past fresh), load ms, negative ("1"/"0"),
    /// token, channel, message, key. Returns 1 when stored, 0 when rejected.
    static let fill = RedisScript("""
        \(helpers)
        if readFence(KEYS[3]) ~= tonumber(ARGV[1]) then
          if holds(KEYS[2], ARGV[7]) then redis.call('DEL', KEYS[2]) end
          redis.call('PUBLISH', ARGV[8], ARGV[9])
          return 0
        end
        local t = redis.call('TIME')
        local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
        local fu = now + tonumber(ARGV[3])
        local su = fu + tonumber(ARGV[4])
        redis.call('DEL', KEYS[1])
        redis.call('HSET', KEYS[1], '\(CacheFormat.valueField)', ARGV[2], '\(CacheFormat.fenceField)', ARGV[1], '\(CacheFormat.metadataField)', string.format('2:%d:%d:%d:', fu, su, tonumber(ARGV[5])) .. ARGV[6])
        redis.call('PEXPIREAT', KEYS[1], su)
        redis.call('PEXPIREAT', KEYS[3], string.format('%d', su + \(fenceKeptMilliseconds)))
        if holds(KEYS[2], ARGV[7]) then redis.call('DEL', KEYS[2]) end
        local message = ARGV[9]
        if #ARGV[2] <= \(CacheFormat.largestValueInMessage) then
          message = 'V' .. #ARGV[10] .. ':' .. ARGV[10] .. string.format('%d:%d:', fu, now) .. ARGV[6] .. ARGV[2]
        end
        redis.call('PUBLISH', ARGV[8], message)
        return 1
        """)

    /// The loader failed: frees the lease (if still ours) and tells the followers at once.
    /// When a stale value is within its stale-if-error window, it is served as fresh for the
    /// retry delay, so that the failing origin is not retried by every caller at once.
    /// ARGV: token, channel, message, retry delay ms (0 for none), stale-if-error ms.
    static let fail = RedisScript("""
        \(helpers)
        if holds(KEYS[2], ARGV[1]) then redis.call('DEL', KEYS[2]) end
        local retry = tonumber(ARGV[4])
        if retry > 0 and redis.call('TYPE', KEYS[1])['ok'] == 'hash' then
          local t = redis.call('TIME')
          local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
          local fu, su, d, n = parseMeta(redis.call('HGET', KEYS[1], '\(CacheFormat.metadataField)'))
          if fu and now >= tonumber(fu) and now < tonumber(fu) + tonumber(ARGV[5]) then
            local fresh = math.min(now + retry, tonumber(su))
            redis.call('HSET', KEYS[1], '\(CacheFormat.metadataField)', string.format('2:%d:%s:%s:%s', fresh, su, d, n))
          end
        end
        redis.call('PUBLISH', ARGV[2], ARGV[3])
        return 1
        """)

    /// A value written by the application (``StampedeCache/set(_:for:policy:)``): bumps the
    /// fence, so that a fill of a load in flight is rejected, stores the entry under the new
    /// fence, and tells every process (the invalidation message: near entries and lookups in
    /// flight are dropped, and the next read finds the new value).
    /// With ARGV[7] "absent", only when the key holds no value that is still fresh.
    /// ARGV: value, fresh ms, stale ms, negative ("1"/"0"), channel, message, condition
    /// ("always"/"absent"). Returns the fence, or 0 when the condition kept it from storing.
    static let set = RedisScript("""
        \(helpers)
        local t = redis.call('TIME')
        local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
        if ARGV[7] == 'absent' and redis.call('TYPE', KEYS[1])['ok'] == 'hash' then
          local fu, su, d, n = parseMeta(redis.call('HGET', KEYS[1], '\(CacheFormat.metadataField)'))
          if fu and tonumber(fu) > now and n ~= '1' then return 0 end
        end
        local fence = bump(KEYS[3], now)
        local fu = now + tonumber(ARGV[2])
        local su = fu + tonumber(ARGV[3])
        redis.call('DEL', KEYS[1])
        redis.call('HSET', KEYS[1], '\(CacheFormat.valueField)', ARGV[1], '\(CacheFormat.fenceField)', string.format('%d', fence), '\(CacheFormat.metadataField)', string.format('2:%d:%d:0:', fu, su) .. ARGV[4])
        redis.call('PEXPIREAT', KEYS[1], su)
        redis.call('PEXPIREAT', KEYS[3], string.format('%d', su + \(fenceKeptMilliseconds)))
        redis.call('PUBLISH', ARGV[5], ARGV[6])
        return fence
        """)

    /// Removes the entry (mode "remove") or marks it stale now, keeping it for stale serving
    /// (mode "expire"); either way bumps the fence so that an in-flight fill is rejected.
    /// ARGV: mode, channel, message. Returns the new fence.
    static let invalidate = RedisScript("""
        \(helpers)
        local t = redis.call('TIME')
        local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
        local fence = bump(KEYS[3], now)
        if ARGV[1] == 'remove' then
          redis.call('DEL', KEYS[1])
        elseif redis.call('TYPE', KEYS[1])['ok'] == 'hash' then
          local fu, su, d, n = parseMeta(redis.call('HGET', KEYS[1], '\(CacheFormat.metadataField)'))
          if fu then
            if tonumber(fu) > now then redis.call('HSET', KEYS[1], '\(CacheFormat.metadataField)', string.format('2:%d:%s:%s:%s', now, su, d, n)) end
          else
            redis.call('DEL', KEYS[1])
          end
        else
          redis.call('DEL', KEYS[1])
        end
        redis.call('PUBLISH', ARGV[2], ARGV[3])
        return fence
        """)
}
