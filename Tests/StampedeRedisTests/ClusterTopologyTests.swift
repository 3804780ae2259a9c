import EmbeddedRedis
@testable import StampedeRedis
import StampedeTestSupport
import Testing

/// The cluster's slot and layout rules on a real 3-master cluster with a replica each.
@Suite("Cluster topology", .serialized, .timeLimit(.minutes(2)))
struct ClusterTopologyTests {
    static let keys: [String] = [
        "", "a", "foo", "123456789", "user:42", "{user:42}:lock", "{user:42}:fence", "x{}y", "{}", "{a}{b}", "a{b", "a}b{c}",
        "{stampede:k}", "{stampede:k}:lock", "\u{e9}", "e\u{301}", "{\u{e9}}x", String(repeating: "k", count: 1000),
    ] + (0..<200).map { "key:\($0)" }

    @Test("CRC16 of the standard check string, and hash tags as Redis reads them")
    func pureRules() {
        #expect(HashSlot.crc16(Array("123456789".utf8)) == 0x31C3)
        #expect(HashSlot(key: "{user:42}:lock") == HashSlot(key: "user:42"))
        #expect(HashSlot(key: "{}x") == HashSlot(key: "{}x"))
        #expect(HashSlot(key: "{}x") != HashSlot(key: "x"), "an empty tag hashes the whole key")
        #expect(HashSlot(key: "{a}{b}") == HashSlot(key: "a"), "the first tag counts")
        #expect(HashSlot(16_384) == nil && HashSlot(-1) == nil && HashSlot(16_383) != nil)
    }

    @Test("every slot matches CLUSTER KEYSLOT; every slot has a master, and the masters are the cluster's")
    func againstTheServer() async throws {
        let cluster = try await RedisCluster.start(masters: 3, replicasPerMaster: 1)
        defer { cluster.stop() }
        try await withClient(RedisConfiguration(url: cluster.nodes[0].url)) { client in
        for key in Self.keys {
            let slot = try #require(try await client.send("CLUSTER", "KEYSLOT", RedisArgument(key)).int)
            #expect(HashSlot(key: key).value == slot, "\(key.prefix(40))")
        }

        let topology = try ClusterTopology(shardsReply: try await client.send("CLUSTER", "SHARDS"))
        #expect(topology.coversEverySlot)
        #expect(topology.shards.count == 3)
        #expect(topology.shards.allSatisfy { $0.replicas.count == 1 })
        let ports = Set(cluster.nodes.compactMap(\.port))
        #expect(Set(topology.shards.flatMap { [$0.master.port] + $0.replicas.map(\.port) }) == ports)

        // Each key's master, asked directly, serves it; any other master redirects to it.
        for key in Self.keys.prefix(40) {
            let master = try #require(topology.master(for: HashSlot(key: key)))
            for other in topology.masters {
                try await withClient(RedisConfiguration(url: "redis://\(other)")) { node in
                    do {
                        _ = try await node.send("GET", RedisArgument(key))
                        #expect(other == master, "\(key) was served by \(other), not its master \(master)")
                    } catch let error as RedisError {
                        #expect(ClusterReply(errorMessage: error.message) == .moved(HashSlot(key: key), master), "\(error.message)")
                    }
                }
            }
        }
        }
    }

    @Test("during a slot's migration, a missing key is an ASK to the importing node and a script on three keys is told to try again")
    func migratingSlot() async throws {
        let cluster = try await RedisCluster.start(masters: 3)
        defer { cluster.stop() }
        let slot = HashSlot(key: "{moving}")
        try await withClient(cluster.clientConfiguration()) { try await $0.send("SET", "{moving}:here", "1") }
        try await cluster.whileMigrating(slot) { from, _, target, _ async throws in
            let missing = await redisError { _ = try await from.send("GET", "{moving}:absent") }
            #expect(ClusterReply(errorMessage: missing?.message ?? "") == .ask(slot, target), "\(String(describing: missing))")
            let script = await redisError {
                _ = try await from.send("EVAL", "return redis.call('MGET', KEYS[1], KEYS[2], KEYS[3])", "3",
                                    "{moving}:here", "{moving}:a", "{moving}:b")
            }
            #expect(ClusterReply(errorMessage: script?.message ?? "") == .retryLater, "\(String(describing: script))")
            // A key still on the source is served there.
            #expect(try await from.send("GET", "{moving}:here").string == "1")
        }
    }

    @Test("a node listening on a plain and a TLS port: a TLS client takes the TLS port, a plain one the plain port")
    func tlsPorts() throws {
        func text(_ value: String) -> RedisValue { .bulkString(Array(value.utf8)) }
        let node: RedisValue = .array([
            text("id"), text("abc"), text("port"), .integer(7000), text("tls-port"), .integer(7100),
            text("ip"), text("10.0.0.1"), text("endpoint"), text("10.0.0.1"), text("role"), text("master"), text("health"), text("online"),
        ])
        let tlsOnly: RedisValue = .array([
            text("id"), text("def"), text("tls-port"), .integer(7101),
            text("ip"), text("10.0.0.2"), text("endpoint"), text("10.0.0.2"), text("role"), text("master"), text("health"), text("online"),
        ])
        let reply: RedisValue = .array([
            .array([text("slots"), .array([.integer(0), .integer(8191)]), text("nodes"), .array([node])]),
            .array([text("slots"), .array([.integer(8192), .integer(16383)]), text("nodes"), .array([tlsOnly])]),
        ])
        #expect(try ClusterTopology(shardsReply: reply).masters == [ClusterNodeAddress(host: "10.0.0.1", port: 7000), ClusterNodeAddress(host: "10.0.0.2", port: 7101)])
        #expect(try ClusterTopology(shardsReply: reply, usesTLS: true).masters == [ClusterNodeAddress(host: "10.0.0.1", port: 7100), ClusterNodeAddress(host: "10.0.0.2", port: 7101)])
    }

    @Test("MOVED, ASK and the errors that mean a command did not run are told apart from the rest")
    func replies() throws {
        let node = try #require(ClusterNodeAddress("127.0.0.1:6381"))
        #expect(ClusterReply(errorMessage: "MOVED 3999 127.0.0.1:6381") == .moved(try #require(HashSlot(3999)), node))
        #expect(ClusterReply(errorMessage: "ASK 3999 127.0.0.1:6381") == .ask(try #require(HashSlot(3999)), node))
        #expect(ClusterReply(errorMessage: "MOVED 3999 ::1:6381") == .moved(try #require(HashSlot(3999)), ClusterNodeAddress(host: "::1", port: 6381)))
        for retry in ["TRYAGAIN Multiple keys request during rehashing of slot", "CLUSTERDOWN The cluster is down", "LOADING Redis is loading",
                      "MASTERDOWN Link with MASTER is down"] {
            #expect(ClusterReply(errorMessage: retry) == .retryLater, "\(retry)")
        }
        for other in ["MOVED", "MOVED x 127.0.0.1:6381", "MOVED 16384 127.0.0.1:6381", "MOVED 1 nowhere", "ERR unknown command", "WRONGTYPE x", ""] {
            #expect(ClusterReply(errorMessage: other) == .error, "\(other)")
        }
    }
}
