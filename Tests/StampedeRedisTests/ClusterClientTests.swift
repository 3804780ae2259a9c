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
        cluster.clientConfiguration(commandTimeout: .seconds(5))
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

    @Test("the topology is asked for again every refresh interval: a slot moved behind the client's back is learned without a redirection")
    func periodicRefresh() async throws {
        let cluster = try await RedisCluster.start(masters: 3)
        defer { cluster.stop() }
        var configuration = clusterClient(cluster)
        configuration.clusterRefreshInterval = .milliseconds(100)
        try await withClient(configuration) { client in
            try await client.send("PING")
            let slot = HashSlot(key: "{unused}")
            let before = try #require(client.cluster?.topology.master(for: slot))
            let target = try await cluster.whileMigrating(slot) { _, _, target, migration in
                try await migration.finish()
                return target
            }
            #expect(target != before)
            // No command touched the slot: only the periodic refresh can tell.
            #expect(await eventually { client.cluster?.topology.master(for: slot) == target })
        }
        var zero = clusterClient(cluster)
        zero.clusterRefreshInterval = .zero
        #expect(throws: RedisError.self) { try RedisClient(configuration: zero) }
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
            let newMaster = try await cluster.whileMigrating(HashSlot(key: "{moving}")) { _, _, target, migration in
                try await migration.finish()
                return target
            }
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
}

/// A master of a real cluster killed under traffic: its replica takes over, and the client
/// follows without a restart.
@Suite("Cluster client across a failover", .serialized, .timeLimit(.minutes(3)))
struct ClusterFailoverTests {
    @Test("kill -9 of a master: errors are typed and end with the failover; then every key answers again")
    func masterKilled() async throws {
        let cluster = try await RedisCluster.start(masters: 3, replicasPerMaster: 1)
        defer { cluster.stop() }
        try await withClient(cluster.clientConfiguration()) { client in
            let keys = (0..<300).map { "key:\($0)" }
            for key in keys { try await client.send("SET", RedisArgument(key), "before") }
            let topology = try ClusterTopology(shardsReply: try await client.send("CLUSTER", "SHARDS"))
            let victim = try #require(topology.masters.first)
            let victimKeys = keys.filter { topology.master(for: HashSlot(key: $0)) == victim }
            let node = try #require(cluster.nodes.first { $0.port == victim.port })

            let observed = Observed()
            let traffic = Task { [victimKeys] in
                await withTaskGroup(of: Void.self) { group in
                    for worker in 0..<4 {
                        group.addTask {
                            var index = worker
                            while !observed.stopped {
                                let key = victimKeys[index % victimKeys.count]
                                index += 4
                                do {
                                    _ = try await client.send("GET", RedisArgument(key))
                                } catch {
                                    observed.record(error)
                                }
                            }
                        }
                    }
                }
            }
            node.kill()
            // The replica is promoted once the others agree the master is gone.
            #expect(await eventually(within: .seconds(30)) {
                guard let shards = try? await client.send("CLUSTER", "SHARDS"),
                      let now = try? ClusterTopology(shardsReply: shards)
                else { return false }
                return now.coversEverySlot && !now.masters.contains(victim)
            })
            // The client finds the new master by itself: a write to each of the victim's keys.
            #expect(await eventually(within: .seconds(30)) {
                (try? await client.send("SET", RedisArgument(victimKeys[0]), "after")) != nil
            })
            observed.recovered()
            for key in victimKeys { try await client.send("SET", RedisArgument(key), "after") }
            observed.stop()
            await traffic.value
            let seen = observed.outcome
            #expect(seen.errors.isSubset(of: ["connectionLost", "connectionRefused", "timeout", "serverError", "connectTimeout"]), "\(seen.errors)")
            #expect(!seen.errors.isEmpty, "the kill was seen")
            #expect(seen.errorsAfterRecovery == 0)
            for key in keys {
                let expected = victimKeys.contains(key) ? "after" : "before"
                #expect(try await client.send("GET", RedisArgument(key)).string == expected)
            }
        }
    }
}

extension ClusterFailoverTests {
    @Test("CLUSTER FAILOVER: the client follows the promoted replica, and a script it never ran there is sent with EVAL")
    func gracefulFailoverAndScripts() async throws {
        let cluster = try await RedisCluster.start(masters: 3, replicasPerMaster: 1)
        defer { cluster.stop() }
        try await withClient(cluster.clientConfiguration()) { client in
            let script = RedisScript("return redis.call('INCR', KEYS[1])")
            let key: RedisArgument = "{failover}:counter"
            #expect(try await client.run(script, keys: [key]) == .integer(1))
            let topology = try ClusterTopology(shardsReply: try await client.send("CLUSTER", "SHARDS"))
            let shard = try #require(topology.shards.first { $0.master == topology.master(for: HashSlot(key: key)) })
            let replica = try #require(shard.replicas.first)
            try await withClient(RedisConfiguration(url: "redis://\(replica)")) { promoted in
                // A manual failover waits for the replica to catch up with its master first.
                try await promoted.send("CLUSTER", "FAILOVER")
                #expect(await eventually(within: .seconds(10)) {
                    (try? await promoted.send("ROLE"))?.array?.first?.string == "master"
                })
            }
            // The old master answers MOVED; the new one never saw the script (NOSCRIPT, then EVAL).
            #expect(try await client.run(script, keys: [key]) == .integer(2))
            // Its view of the layout settles on the new master once the nodes agree.
            #expect(await eventually {
                await client.cluster?.refreshTopology()
                return client.cluster?.topology.master(for: HashSlot(key: key)) == replica
            })
        }
    }
}

/// What the traffic of a failover test saw.
private final class Observed: Sendable {
    private let state = Mutex<(errors: Set<String>, errorsAfterRecovery: Int, recovered: Bool, stopped: Bool)>(([], 0, false, false))

    var stopped: Bool { state.withLock { $0.stopped } }
    var outcome: (errors: Set<String>, errorsAfterRecovery: Int) { state.withLock { ($0.errors, $0.errorsAfterRecovery) } }
    func stop() { state.withLock { $0.stopped = true } }
    func recovered() { state.withLock { $0.recovered = true } }

    func record(_ error: any Error) {
        state.withLock { state in
            state.errors.insert((error as? RedisError).map { "\($0.code)" } ?? "\(error)")
            if state.recovered { state.errorsAfterRecovery += 1 }
        }
    }
}

extension ClusterFailoverTests {
    @Test("a subscription whose node dies moves to another node, says messages may have been missed, and hears the next ones")
    func subscriptionMovesWhenItsNodeDies() async throws {
        let cluster = try await RedisCluster.start(masters: 3, replicasPerMaster: 1)
        defer { cluster.stop() }
        // A replica first: killing it leaves every slot served.
        let replicaIndex = try #require(cluster.nodes.indices.first { index in
            (try? cluster.cli(["-p", "\(cluster.nodes[index].port ?? 0)", "role"]).output.hasPrefix("slave")) == true
        })
        try await withClient(cluster.clientConfiguration(first: replicaIndex)) { subscriber in
            try await withClient(cluster.clientConfiguration(first: (replicaIndex + 1) % cluster.nodes.count)) { publisher in
                try await subscriber.subscribe(to: ["news"]) { events in
                    var iterator = events.makeAsyncIterator()
                    _ = try await publisher.publish(Array("before".utf8), to: "news")
                    #expect(try await iterator.next() == .message(.init(channel: "news", payload: Array("before".utf8))))
                    cluster.nodes[replicaIndex].kill()
                    // Published until one arrives through the subscription's new node.
                    let publishing = Task {
                        while !Task.isCancelled {
                            _ = try? await publisher.publish(Array("after".utf8), to: "news")
                            try? await Task.sleep(for: .milliseconds(50))
                        }
                    }
                    defer { publishing.cancel() }
                    #expect(try await iterator.next() == .messagesMayHaveBeenMissed)
                    #expect(try await iterator.next() == .message(.init(channel: "news", payload: Array("after".utf8))))
                }
            }
        }
    }
}
