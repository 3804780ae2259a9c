import StampedeRedis

/// The storm's look at a user's database: is anything else in it, deleting its own keys,
/// and Redis's own counts. In a cluster each of these goes to every master.
enum Keyspace {
    /// A key outside the storm's prefix, if the database holds one (`SCAN` on every
    /// server, stopping at the first).
    static func firstForeignKey(_ client: RedisClient) async throws -> String? {
        for server in try await client.masters() {
            var cursor = "0"
            repeat {
                let (next, keys) = try await scan(client, server, cursor: cursor, match: nil)
                if let foreign = keys.first(where: { !StormKeys.isOwn($0) }) { return foreign }
                cursor = next
            } while cursor != "0"
        }
        return nil
    }

    /// Deletes every key matching `pattern` on every server; returns how many.
    @discardableResult
    static func delete(matching pattern: String, _ client: RedisClient) async throws -> Int {
        var deleted = 0
        for server in try await client.masters() {
            var cursor = "0"
            repeat {
                let (next, keys) = try await scan(client, server, cursor: cursor, match: pattern)
                if !keys.isEmpty { deleted += try await unlink(keys, client) }
                cursor = next
            } while cursor != "0"
        }
        return deleted
    }

    /// `UNLINK`s `keys`: in one command on one server; in a cluster, one command per hash
    /// slot (a command's keys must share one), sent side by side.
    private static func unlink(_ keys: [String], _ client: RedisClient) async throws -> Int {
        guard client.configuration.isCluster else {
            return try await client.send(["UNLINK"] + keys.map { RedisArgument($0) }).int ?? 0
        }
        let bySlot = Dictionary(grouping: keys, by: { HashSlot(key: $0) })
        return try await withThrowingTaskGroup(of: Int.self) { group in
            for keys in bySlot.values {
                group.addTask { try await client.send(["UNLINK"] + keys.map { RedisArgument($0) }).int ?? 0 }
            }
            return try await group.reduce(0, +)
        }
    }

    private static func scan(
        _ client: RedisClient, _ server: RedisConfiguration.Endpoint, cursor: String, match: String?
    ) async throws -> (String, [String]) {
        var command: [RedisArgument] = ["SCAN", RedisArgument(cursor), "COUNT", "1000"]
        if let match { command += ["MATCH", RedisArgument(match)] }
        let reply = try await client.send(command, to: server)
        guard let parts = reply.array, parts.count == 2, let next = parts[0].string, let keys = parts[1].array else {
            throw ToolError("unexpected SCAN reply: \(reply)")
        }
        return (next, keys.compactMap(\.string))
    }

    /// Commands each server has run since it started, over every command type
    /// (`INFO commandstats`), by server.
    static func commandsProcessed(_ client: RedisClient) async throws -> [String: Int] {
        var processed: [String: Int] = [:]
        for server in try await client.masters() {
            guard let info = try await client.send(["INFO", "commandstats"], to: server).string else {
                throw ToolError("INFO commandstats gave no text")
            }
            processed[server.description] = commands(inCommandStats: info)
        }
        return processed
    }

    /// The `PUBLISH` messages the cluster's masters have sent over the cluster bus since they
    /// started (`CLUSTER INFO`, `cluster_stats_messages_publish_sent`); `nil` on one server.
    static func clusterBusPublishMessages(_ client: RedisClient) async throws -> Int? {
        guard client.configuration.isCluster else { return nil }
        var sent = 0
        for server in try await client.masters() {
            let info = try await client.send(["CLUSTER", "INFO"], to: server).string ?? ""
            sent += info.split(whereSeparator: \.isNewline).lazy
                .compactMap { line in line.hasPrefix("cluster_stats_messages_publish_sent:") ? Int(line.dropFirst(36)) : nil }
                .first ?? 0
        }
        return sent
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
