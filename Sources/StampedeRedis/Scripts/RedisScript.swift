/// A Lua script, named by its SHA-1 so that it is sent in full only once per server.
///
/// ```swift
/// static let compareAndDelete = RedisScript("""
///     if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
///     return 0
///     """)
/// try await client.run(compareAndDelete, keys: ["lock"], arguments: [token])
/// ```
public struct RedisScript: Sendable, Hashable {
    /// The Lua source.
    public let source: String
    /// The SHA-1 of the source, as `EVALSHA` expects it.
    public let sha1: String

    public init(_ source: String) {
        self.source = source
        self.sha1 = SHA1.hexDigest(Array(source.utf8))
    }
}

extension RedisClient {
    /// Runs a script with `EVALSHA`; when the server does not know it (first use, after a
    /// restart or `SCRIPT FLUSH`) it falls back to `EVAL`, which also caches it there.
    ///
    /// Keys and arguments go as separate command arguments, never into the Lua source.
    ///
    /// - Returns: the script's reply.
    /// - Throws: ``RedisError``; a Lua error is a ``RedisError/Code/serverError`` with its text.
    @discardableResult
    public func run(_ script: RedisScript, keys: [RedisArgument] = [], arguments: [RedisArgument] = []) async throws -> RedisValue {
        var command: [RedisArgument] = ["EVALSHA", RedisArgument(script.sha1), RedisArgument(keys.count)]
        command.reserveCapacity(3 + keys.count + arguments.count)
        command += keys
        command += arguments
        do {
            return try await send(command)
        } catch let error as RedisError where error.serverErrorPrefix == "NOSCRIPT" {
            logger.debug("script not cached on the server; sending it with EVAL", metadata: ["redis.script": "\(script.sha1)"])
            command[0] = "EVAL"
            command[1] = RedisArgument(script.source)
            return try await send(command)
        }
    }

    /// Runs a script as ``run(_:keys:arguments:)`` does, then waits until `replicas` replicas
    /// of the server that ran it have acknowledged its writes (`WAIT`), at most `timeout`.
    /// The wait holds the connection it runs on: commands queued behind it on that
    /// connection wait too.
    ///
    /// - Returns: the script's reply, and how many replicas acknowledged (fewer than
    ///   `replicas` when `timeout` passed first).
    /// - Throws: ``RedisError/Code/invalidArgument`` when `timeout` is not shorter than the
    ///   command timeout; otherwise as ``run(_:keys:arguments:)``.
    public func run(
        _ script: RedisScript, keys: [RedisArgument] = [], arguments: [RedisArgument] = [],
        waitingForReplicas replicas: Int, timeout: Duration
    ) async throws -> (reply: RedisValue, acknowledged: Int) {
        guard replicas >= 1, timeout > .zero, timeout < configuration.commandTimeout else {
            throw RedisError(.invalidArgument, "waiting for replicas needs at least 1 replica and a timeout within 0...commandTimeout (\(configuration.commandTimeout)), got \(replicas) and \(timeout)")
        }
        let wait: [RedisArgument] = ["WAIT", RedisArgument(replicas), RedisArgument(max(1, Int(timeout / .milliseconds(1))))]
        if let cluster {
            // One connection per node: the WAIT follows the script on the connection that ran it.
            let reply = try await run(script, keys: keys, arguments: arguments)
            let route = keys.first.map { ClusterRoute.slot(HashSlot(key: $0)) } ?? .anyNode
            return (reply, try await cluster.send(wait, route: route).int ?? 0)
        }
        // WAIT counts the writes of its own connection: both go on one.
        let connection = connection()
        var command: [RedisArgument] = ["EVALSHA", RedisArgument(script.sha1), RedisArgument(keys.count)] + keys + arguments
        var replies = await connection.pipeline([command, wait])
        if case .failure(let error) = replies[0], error.serverErrorPrefix == "NOSCRIPT" {
            command[0] = "EVAL"
            command[1] = RedisArgument(script.source)
            replies = await connection.pipeline([command, wait])
        }
        return (try replies[0].get(), try replies[1].get().int ?? 0)
    }
}
