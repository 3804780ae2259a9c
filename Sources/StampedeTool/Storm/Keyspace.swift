import StampedeRedis

/// The storm's look at a user's database: is anything else in it, and deleting its own keys.
enum Keyspace {
    /// A key outside the storm's prefix, if the database holds one (`SCAN`, stopping at the
    /// first).
    static func firstForeignKey(_ client: RedisClient) async throws -> String? {
        var cursor = "0"
        repeat {
            let (next, keys) = try await scan(client, cursor: cursor, match: nil)
            if let foreign = keys.first(where: { !StormKeys.isOwn($0) }) { return foreign }
            cursor = next
        } while cursor != "0"
        return nil
    }

    /// Deletes every key matching `pattern`; returns how many.
    @discardableResult
    static func delete(matching pattern: String, _ client: RedisClient) async throws -> Int {
        var cursor = "0"
        var deleted = 0
        repeat {
            let (next, keys) = try await scan(client, cursor: cursor, match: pattern)
            if !keys.isEmpty {
                deleted += try await client.send(["UNLINK"] + keys.map { RedisArgument($0) }).int ?? 0
            }
            cursor = next
        } while cursor != "0"
        return deleted
    }

    private static func scan(_ client: RedisClient, cursor: String, match: String?) async throws -> (String, [String]) {
        var command: [RedisArgument] = ["SCAN", RedisArgument(cursor), "COUNT", "1000"]
        if let match { command += ["MATCH", RedisArgument(match)] }
        let reply = try await client.send(command)
        guard let parts = reply.array, parts.count == 2, let next = parts[0].string, let keys = parts[1].array else {
            throw ToolError("unexpected SCAN reply: \(reply)")
        }
        return (next, keys.compactMap(\.string))
    }

    /// Commands Redis has run since it started, over every command type
    /// (`INFO commandstats`).
    static func commandsProcessed(_ client: RedisClient) async throws -> Int {
        guard let info = try await client.send("INFO", "commandstats").string else { throw ToolError("INFO commandstats gave no text") }
        return commands(inCommandStats: info)
    }

    /// The calls in an `INFO commandstats` text (lines like `cmdstat_get:calls=123,usec=456,...`),
    /// less `UNSUBSCRIBE`: a worker's cache sends one as it shuts down, after its storm, and
    /// it would count against Stampede alone.
    static func commands(inCommandStats info: String) -> Int {
        info.split(whereSeparator: \.isNewline).reduce(0) { total, line in
            guard line.hasPrefix("cmdstat_"), !line.hasPrefix("cmdstat_unsubscribe:"),
                  let calls = line.split(separator: ":").last?.split(separator: ",").first,
                  calls.hasPrefix("calls="), let count = Int(calls.dropFirst(6)) else { return total }
            return total + count
        }
    }
}
