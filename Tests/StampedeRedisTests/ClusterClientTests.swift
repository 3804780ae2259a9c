import EmbeddedRedis
@testable import StampedeRedis
import StampedeTestSupport
import Synchronization
import Testing

/// The client in a real 3-master cluster: routing by slot, scripts on every master, a slot
/// that moves under traffic.
@Suite("Cluster client", .serialized, .timeLimit(.minutes(3)))
struct ClusterClientTests {
    func clusterClient(_ cluster: RedisCluster) -> RedisConfiguration {
        var configuration = RedisConfiguration.cluster(seeds: cluster.nodes.compactMap { $0.port.map { .tcp(host: "127.0.0.1", port: $0) } })
        configuration.commandTimeout = .seconds(5)
        return configuration
    }

    @Test("keys in every part of the slot space are written and read back; pipelines and scripts go to their keys' node")
    func keysAcrossSlots() async throws {
        let cluster = try await RedisCluster.start(masters: 3)
        defer { cluster.stop() }
        try await withClient(clusterClient(cluster)) { client in
            let keys = (0..<2_000).map { "key:\($0)" }
            #expect(Set(keys.map { HashSlot(key: $0).value / 5462 }).count == 3, "keys on every master")
            for key in keys { try await client.send("SET", RedisArgument(key), RedisArgument(key + "!")) }
            for key in keys { #expect(try await client.send("GET", RedisArgument(key)).string == key + "!") }
            let replies = try await client.pipeline([["TIME"], ["GET", "key:7"], ["GET", "key:7"]])
            #expect(replies.count == 3)
            #expect(try replies[1].get().string == "key:7!")
            let script = RedisScript("return redis.call('GET', KEYS[1]) .. ARGV[1]")
            for key in keys.prefix(50) {
                #expect(try await client.run(script, keys: [RedisArgument(key)], arguments: ["?"]).string == key + "!?")
            }
            #expect(client.cluster?.topology.coversEverySlot == true)
        }
    }

    @Test("keys in different slots are refused before anything is sent; SELECT of another database is refused at once")
    func refusals() async throws {
        let cluster = try await RedisCluster.start(masters: 3)
        defer { cluster.stop() }
        try await withClient(clusterClient(cluster)) { client in
            let error = await redisError { try await client.send("DEL", "a", "b") }
            #expect(error?.code == .invalidArgument)
            #expect(client.commandsSent == 0, "nothing was sent")
        }
        var other = clusterClient(cluster)
        other.database = 2
        #expect(throws: RedisError.self) { try RedisClient(configuration: other) }
    }

    @Test("a slot migrated while callers read and write it gives them no error and loses no write")
    func slotMigrationUnderTraffic() async throws {
        let cluster = try await RedisCluster.start(masters: 3)
        defer { cluster.stop() }
        try await withClient(clusterClient(cluster)) { client in
            let keys = (0..<200).map { "{moving}:\($0)" }
            for key in keys { try await client.send("SET", RedisArgument(key), "0") }
            let stop = Atomic(false)
            let failures = Mutex<[String]>([])
            // Callers increment every key over and over while the slot moves.
            let traffic = Task {
                var round = 0
                while !stop.load(ordering: .relaxed) {
                    round += 1
                    for key in keys {
                        do {
                            try await client.send("INCR", RedisArgument(key))
                        } catch {
                            failures.withLock { $0.append("\(key): \(error)") }
                        }
                    }
                }
                return round
            }
            let newMaster = try await migrate(HashSlot(key: "{moving}"), in: cluster)
            // A little more traffic after the move, then stop.
            try await client.send("INCR", "{moving}:0")
            stop.store(true, ordering: .relaxed)
            let rounds = await traffic.value
            #expect(client.cluster?.topology.master(for: HashSlot(key: "{moving}")) == newMaster, "the client followed the slot")
            #expect(failures.withLock { $0 }.isEmpty, "\(failures.withLock { $0.prefix(3) })")
            // Every increment landed once: the last round may have stopped partway.
            var total = 0
            for key in keys { total += try #require(try await client.send("GET", RedisArgument(key)).int) }
            total -= 1  // the one after the move
            #expect(total >= (rounds - 1) * keys.count && total <= rounds * keys.count, "\(total) increments in \(rounds) rounds")
        }
    }

    /// Moves `slot` from its master to another, key by key, as `redis-cli --cluster reshard`
    /// does: importing and migrating states, `MIGRATE` in batches, then the new owner.
    /// Returns the slot's new master.
    func migrate(_ slot: HashSlot, in cluster: RedisCluster) async throws -> ClusterNodeAddress {
        try await withClient(RedisConfiguration(url: cluster.nodes[0].url)) { seed in
            let topology = try ClusterTopology(shardsReply: try await seed.send("CLUSTER", "SHARDS"))
            let source = try #require(topology.master(for: slot))
            let target = try #require(topology.masters.first { $0 != source })
            try await withClient(RedisConfiguration(url: "redis://\(source)")) { from in
                try await withClient(RedisConfiguration(url: "redis://\(target)")) { to in
                    let sourceID = try #require(try await from.send("CLUSTER", "MYID").string)
                    let targetID = try #require(try await to.send("CLUSTER", "MYID").string)
                    try await to.send("CLUSTER", "SETSLOT", RedisArgument(slot.value), "IMPORTING", RedisArgument(sourceID))
                    try await from.send("CLUSTER", "SETSLOT", RedisArgument(slot.value), "MIGRATING", RedisArgument(targetID))
                    while true {
                        let batch = try #require(try await from.send("CLUSTER", "GETKEYSINSLOT", RedisArgument(slot.value), "10").array)
                        if batch.isEmpty { break }
                        try await from.send(["MIGRATE", RedisArgument(target.host), RedisArgument(target.port), "", "0", "5000", "KEYS"]
                                            + batch.compactMap { $0.bytes.map { RedisArgument(bytes: $0) } })
                    }
                    for master in topology.masters {
                        try await withClient(RedisConfiguration(url: "redis://\(master)")) { node in
                            try await node.send("CLUSTER", "SETSLOT", RedisArgument(slot.value), "NODE", RedisArgument(targetID))
                        }
                    }
                }
            }
            return target
        }
    }
}
