import StampedeRedis

extension StampedeCache {
    /// Stores `value` for `key` at once, as a fill would, for the policy's time to live.
    ///
    /// Fenced like a fill: a load in flight for the key when this lands cannot overwrite it
    /// (its fill is rejected), and every process drops its near entry and forgets lookups in
    /// flight for the key (the invalidation message), so that later reads get this value.
    ///
    /// - Throws: ``StampedeError`` (``StampedeError/Code/invalidKey``,
    ///   ``StampedeError/Code/invalidArgument`` for a bad policy,
    ///   ``StampedeError/Code/valueTooLarge``, ``StampedeError/Code/redisUnavailable``), or the
    ///   codec's error.
    public func set<Value: Codable & Sendable>(_ value: Value, for key: String, policy: CachePolicy? = nil) async throws {
        try await store(try configuration.codec.encode(value), for: key, policy: policy, onlyIfAbsent: false)
    }

    /// Stores `value` for `key` as ``set(_:for:policy:)`` does, unless the key holds a value
    /// that is still fresh; atomic in Redis, so of callers racing to add, one wins.
    ///
    /// - Returns: whether it was stored.
    @discardableResult
    public func add<Value: Codable & Sendable>(_ value: Value, for key: String, policy: CachePolicy? = nil) async throws -> Bool {
        try await store(try configuration.codec.encode(value), for: key, policy: policy, onlyIfAbsent: true)
    }

    /// Stores "no such value" for `key` for the policy's negative time to live, fenced as
    /// ``set(_:for:policy:)``: lookups get `nil` from ``valueIfPresent(for:as:policy:logger:load:)``
    /// without calling their loader.
    public func setAbsent(for key: String, policy: CachePolicy? = nil) async throws {
        try await store(nil, for: key, policy: policy, onlyIfAbsent: false)
    }

    /// Removes `key`, as ``invalidate(_:)`` does.
    public func remove(_ key: String) async throws {
        try await invalidate(key)
    }

    /// The value stored for `key` if it is fresh now, without calling any loader and without
    /// taking a lease: `nil` when there is none, it is stale, or it is "no such value".
    ///
    /// - Throws: ``StampedeError`` (``StampedeError/Code/invalidKey``,
    ///   ``StampedeError/Code/corruptEntry`` when the bytes are not a `Value`,
    ///   ``StampedeError/Code/redisUnavailable``).
    public func cachedValue<Value: Codable & Sendable>(for key: String, as type: Value.Type = Value.self) async throws -> Value? {
        if let hit = try nearValue(Value.self, key: key) { return hit }
        try Self.validate(key: key)
        let replies = try await StampedeError.fromRedis {
            try await client.pipeline([["TIME"], CacheFormat.hitRead(namespace: configuration.namespace, key: key)])
        }
        guard case .success(.array(let time)) = replies[0], time.count == 2,
              let seconds = time[0].int, let microseconds = time[1].int
        else { throw StampedeError(.redisUnavailable, "Redis gave no time for '\(key)'") }
        let fields: RedisValue
        do { fields = try replies[1].get() } catch { throw StampedeError(.redisUnavailable, "could not read '\(key)'", underlying: error) }
        guard case .array(let values) = fields, let entry = CacheFormat.entry(hashFields: values),
              !entry.isNegative, seconds * 1000 + microseconds / 1000 < entry.freshUntil
        else { return nil }
        return try decode(Value.self, key: key, bytes: entry.value)
    }

    @discardableResult
    private func store(_ bytes: [UInt8]?, for key: String, policy: CachePolicy?, onlyIfAbsent: Bool) async throws -> Bool {
        try Self.validate(key: key)
        try configurationCheck.rest.get()
        if let policy { try policy.validate() } else { try configurationCheck.policy.get() }
        let policy = policy ?? configuration.policy
        if let bytes, bytes.count > configuration.maximumValueSize {
            throw StampedeError(.valueTooLarge, "the value for '\(key)' has \(bytes.count) bytes; the maximum is \(configuration.maximumValueSize)")
        }
        // Whatever Redis answers, nothing this process holds of the key outlives the call.
        outageValues.remove(ExactKey(key))
        near?.remove(key)
        let (fresh, stale) = policy.storedTimes(isNegative: bytes == nil, jitterDraw: Double.random(in: 0...1))
        let keys = CacheFormat.Keys(namespace: configuration.namespace, key: key)
        let fence = try await StampedeError.fromRedis {
            try await client.run(
                CacheScripts.set, keys: keys.all,
                arguments: [
                    RedisArgument(bytes: bytes ?? []), RedisArgument(fresh.milliseconds), RedisArgument(stale.wholeMilliseconds),
                    bytes == nil ? "1" : "0", RedisArgument(events.channel),
                    RedisArgument(CacheFormat.Message.invalidated(key: key).payload), onlyIfAbsent ? "absent" : "always",
                ])
        }
        guard fence.int != 0 else { return false }
        events.heard(.invalidated, key: key, fill: nil)
        return true
    }
}
