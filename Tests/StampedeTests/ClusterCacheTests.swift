import MetricsTestKit
@_spi(Benchmarks) @testable import Stampede
import StampedeRedis
import StampedeTestSupport
import Synchronization
import Testing

/// The cache on a real 3-master cluster, through the cluster client.
@Suite("StampedeCache on a cluster", .serialized, .timeLimit(.minutes(3)))
struct ClusterCacheTests {
    func configuration(_ cluster: RedisCluster, first: Int = 0) -> RedisConfiguration {
        cluster.clientConfiguration(first: first, commandTimeout: .seconds(5))
    }

    @Test("concurrent callers of keys in every slot range cost the origin one call per key; hits and invalidations work")
    func lookupsAcrossSlots() async throws {
        let cluster = try await RedisCluster.start(masters: 3)
        defer { cluster.stop() }
        try await withClient(configuration(cluster)) { client in
            let cache = StampedeCache(client: client, configuration: .init(namespace: uniquePrefix(), policy: .init(earlyRefreshBeta: nil)))
            let keys = (0..<60).map { "user:\($0)" }
            let origin = FakeOrigin()
            try await withThrowingTaskGroup(of: Void.self) { group in
                for key in keys {
                    for _ in 0..<5 {
                        group.addTask {
                            let value = try await fetch(cache, key) { try await origin.load() }
                            #expect(value == "v1")
                        }
                    }
                }
                try await group.waitForAll()
            }
            #expect(origin.calls == keys.count)
            for key in keys { #expect(try await fetch(cache, key) { "not called" } == "v1") }
            origin.set("v2")
            try await cache.invalidate("user:7")
            #expect(try await fetch(cache, "user:7") { try await origin.load() } == "v2")
            #expect(Set(keys.map { HashSlot(key: CacheFormat.Keys(namespace: cache.configuration.namespace, key: $0).entry).value / 5462 }).count == 3,
                    "the keys are on every master")
            await cache.shutdown()
        }
    }

    @Test("a waiter subscribed on one node is woken by a fill published on another")
    func fillReachesEveryNode() async throws {
        let cluster = try await RedisCluster.start(masters: 3)
        defer { cluster.stop() }
        let namespace = uniquePrefix()
        let policy = CachePolicy(earlyRefreshBeta: nil, waitTimeout: .seconds(60))
        try await withClient(configuration(cluster, first: 0)) { leaderClient in
            try await withClient(configuration(cluster, first: 1)) { followerClient in
                let metrics = TestMetrics()
                let leader = StampedeCache(client: leaderClient, configuration: .init(namespace: namespace, policy: policy))
                // On a clock that never moves, the follower's wait never times out: only a message
                // can end it.
                let follower = StampedeCache.onClock(
                    ManualClock(), client: followerClient, configuration: .init(namespace: namespace, policy: policy), metricsFactory: metrics)
                try await follower.prepare()
                // A key whose master is not the node the follower's subscription is on.
                let topology = try ClusterTopology(shardsReply: try await followerClient.send("CLUSTER", "SHARDS"))
                let subscribedTo = try #require(cluster.nodes[1].port)
                let key = try #require((0..<100).map { "k\($0)" }.first { key in
                    topology.master(for: HashSlot(key: CacheFormat.Keys(namespace: namespace, key: key).entry))?.port != subscribedTo
                })
                let origin = FakeOrigin()
                let leading = Task { try await fetch(leader, key) { try await origin.loadWhenReleased() } }
                await origin.waitForCalls(1)
                let following = Task { try await fetch(follower, key) { "the follower must not load" } }
                // The follower found the lease taken and waits for the leader's fill.
                #expect(await eventually { (try? metrics.cacheCounter("lease_contended", of: follower).totalValue) ?? 0 >= 1 })
                origin.release()
                #expect(try await leading.value == "v1")
                #expect(try await following.value == "v1")
                #expect(origin.calls == 1)
                await leader.shutdown()
                await follower.shutdown()
            }
        }
    }

    /// Redis answers multi-key commands of a slot halfway through its migration with
    /// `TRYAGAIN` until the migration ends: the client retries them within the command
    /// timeout, so a migration that moves its keys within that time costs callers nothing.
    @Test("a slot migrated under lookups, fills and invalidations: no caller gets an error, none falls back to the origin")
    func slotMigrationUnderLookups() async throws {
        let cluster = try await RedisCluster.start(masters: 3)
        defer { cluster.stop() }
        try await withClient(configuration(cluster)) { client in
            let namespace = uniquePrefix()
            // Keys whose entries share one slot, so that the migration catches them midway.
            let slot = HashSlot(key: CacheFormat.Keys(namespace: namespace, key: "k0").entry)
            var found = ["k0"]
            var candidate = 1
            while found.count < 8 {
                if HashSlot(key: CacheFormat.Keys(namespace: namespace, key: "k\(candidate)").entry) == slot { found.append("k\(candidate)") }
                candidate += 1
            }
            let keys = found
            // With .fail, a redirection that reached the cache would be an error, not a load.
            let cache = StampedeCache(client: client, configuration: .init(namespace: namespace, policy: .init(
                timeToLive: .milliseconds(50), earlyRefreshBeta: nil, whenRedisUnavailable: .fail)))
            let stop = Tally()
            let failures = Failures()
            let lookups = Tally()
            let traffic = Task { [keys] in
                await withTaskGroup(of: Void.self) { group in
                    for worker in 0..<4 {
                        group.addTask {
                            var index = worker
                            while stop.count == 0 {
                                let key = keys[index % keys.count]
                                index += 1
                                do {
                                    if index % 5 == 0 { try await cache.invalidate(key) }
                                    let value = try await fetch(cache, key) { "value of \(key)" }
                                    if value != "value of \(key)" { failures.record("\(key): \(value)") }
                                    lookups.add()
                                } catch {
                                    failures.record("\(key): \(error)")
                                }
                            }
                        }
                    }
                }
            }
            #expect(await eventually { lookups.count > 100 })
            try await cluster.whileMigrating(slot) { from, _, _, migration in
                // Lookups meet the half-moved slot (ASK, TRYAGAIN) before its keys move.
                #expect(await eventually {
                    let errors = (try? await from.send("INFO", "errorstats").string) ?? ""
                    return errors.contains("errorstat_ASK") || errors.contains("errorstat_TRYAGAIN")
                })
                try await migration.finish()
            }
            let after = lookups.count
            #expect(await eventually { lookups.count > after + 100 })
            stop.add()
            await traffic.value
            #expect(failures.all.isEmpty, "\(failures.all.prefix(3))")
            await cache.shutdown()
        }
    }
}

/// What callers running side by side saw go wrong.
final class Failures: Sendable {
    private let lines = Mutex<[String]>([])
    func record(_ line: String) { lines.withLock { $0.append(line) } }
    var all: [String] { lines.withLock { $0 } }
}
