import EmbeddedRedis
import StampedeRedis

extension RedisCluster {
    /// A client configuration for this cluster, seeded with every node, `first` first (a
    /// client's subscription connects to its first seed).
    public func clientConfiguration(first: Int = 0, commandTimeout: Duration = .seconds(2)) -> RedisConfiguration {
        let ports = nodes.compactMap(\.port)
        var configuration = RedisConfiguration.cluster(seeds: (ports[first...] + ports[..<first]).map { .tcp(host: "127.0.0.1", port: $0) })
        configuration.commandTimeout = commandTimeout
        configuration.reconnectBackoff = .init(initial: .milliseconds(20), maximum: .milliseconds(200))
        if let tlsAuthorityFile { configuration.tls = .init(trust: .certificateAuthorityFile(tlsAuthorityFile)) }
        return configuration
    }

    /// Starts moving `slot` from its master to another master, as `redis-cli --cluster
    /// reshard` does: the target imports it, the source migrates it. `body` runs with both
    /// nodes' clients and addresses, in the middle of the migration.
    public func whileMigrating<T>(
        _ slot: HashSlot,
        _ body: (_ from: RedisClient, _ to: RedisClient, _ target: ClusterNodeAddress, _ migration: SlotMigration) async throws -> T
    ) async throws -> T {
        try await withClient(RedisConfiguration(url: nodes[0].url)) { seed in
            let topology = try ClusterTopology(shardsReply: try await seed.send("CLUSTER", "SHARDS"))
            guard let source = topology.master(for: slot), let target = topology.masters.first(where: { $0 != source }) else {
                throw RedisError(.invalidArgument, "slot \(slot) has no master to move it from, or nowhere to move it")
            }
            return try await withClient(RedisConfiguration(url: "redis://\(source)")) { from in
                try await withClient(RedisConfiguration(url: "redis://\(target)")) { to in
                    guard let sourceID = try await from.send("CLUSTER", "MYID").string,
                          let targetID = try await to.send("CLUSTER", "MYID").string
                    else { throw RedisError(.protocolError, "CLUSTER MYID gave no id") }
                    try await to.send("CLUSTER", "SETSLOT", RedisArgument(slot.value), "IMPORTING", RedisArgument(sourceID))
                    try await from.send("CLUSTER", "SETSLOT", RedisArgument(slot.value), "MIGRATING", RedisArgument(targetID))
                    let migration = SlotMigration(slot: slot, from: from, target: target, targetID: targetID, masters: topology.masters)
                    return try await body(from, to, target, migration)
                }
            }
        }
    }
}

/// A slot's migration under way, which ``finish()`` completes.
public struct SlotMigration: Sendable {
    let slot: HashSlot
    let from: RedisClient
    let target: ClusterNodeAddress
    let targetID: String
    let masters: [ClusterNodeAddress]

    /// Moves the slot's keys in batches with `MIGRATE`, then gives the slot to the target on
    /// every master.
    public func finish() async throws {
        while true {
            guard let batch = try await from.send("CLUSTER", "GETKEYSINSLOT", RedisArgument(slot.value), "10").array else {
                throw RedisError(.protocolError, "CLUSTER GETKEYSINSLOT gave no array")
            }
            if batch.isEmpty { break }
            try await from.send(["MIGRATE", RedisArgument(target.host), RedisArgument(target.port), "", "0", "5000", "KEYS"]
                                + batch.compactMap { $0.bytes.map { RedisArgument(bytes: $0) } })
        }
        for master in masters {
            try await withClient(RedisConfiguration(url: "redis://\(master)")) { node in
                try await node.send("CLUSTER", "SETSLOT", RedisArgument(slot.value), "NODE", RedisArgument(targetID))
            }
        }
    }
}

extension RedisCluster {
    /// The node serving as master at `address`.
    public func node(at address: ClusterNodeAddress) -> RedisServer? {
        nodes.first { $0.port == address.port }
    }

    /// A replica of the master at `address`, as its `ROLE` says.
    public func replica(of address: ClusterNodeAddress) throws -> RedisServer? {
        try nodes.first { node in
            guard let port = node.port, port != address.port else { return false }
            let role = try cli(["-p", "\(port)", "role"]).output.split(separator: "\n")
            return role.first == "slave" && role.count > 2 && Int(role[2]) == address.port
        }
    }
}
