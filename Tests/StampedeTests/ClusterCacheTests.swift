import MetricsTestKit
@_spi(Benchmarks) @testable import Stampede
import StampedeRedis
import StampedeTestSupport
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
                #expect(await eventually { (try? metrics.expectCounter("stampede.cache.lease_contended").totalValue) ?? 0 >= 1 })
                origin.release()
                #expect(try await leading.value == "v1")
                #expect(try await following.value == "v1")
                #expect(origin.calls == 1)
                await leader.shutdown()
                await follower.shutdown()
            }
        }
    }
}
