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
}
