import EmbeddedRedis
@_spi(Benchmarks) @testable import Stampede
import StampedeRedis
import StampedeTestSupport
import Testing

/// The cache and the mutex through a Sentinel failover.
@Suite("StampedeCache and RedisMutex under Sentinel", .serialized, .timeLimit(.minutes(3)))
struct SentinelCacheTests {
    @Test("across SENTINEL FAILOVER: the cache serves and fills on the new master (origin once per key), lock fences keep growing")
    func throughAFailover() async throws {
        let set = try await RedisSentinelSet.start()
        defer { set.stop() }
        var configuration = try RedisConfiguration(url: set.url + "?sentinel_recheck_ms=500")
        configuration.commandTimeout = .seconds(2)
        configuration.reconnectBackoff = .init(initial: .milliseconds(20), maximum: .milliseconds(200))
        try await withClient(configuration) { client in
            let namespace = uniquePrefix()
            let cache = StampedeCache(client: client, configuration: .init(namespace: namespace, policy: .init(earlyRefreshBeta: nil)))
            let mutex = RedisMutex(client: client, keyPrefix: namespace + ":lock:")
            let before = try await mutex.withLock("ledger") { $0.fence }
            #expect(try await fetch(cache, "profile") { "v1" } == "v1")

            let oldPort = try #require(set.servers[0].port)
            _ = try set.cli(["-p", "\(try #require(set.sentinels[0].port))", "sentinel", "failover", RedisSentinelSet.masterName])
            #expect(await eventually(within: .seconds(20)) {
                if case .tcp(_, let port)? = client.sentinelMaster { return port != oldPort }
                return false
            })

            // The new master: locks and fills work, and its fences are newer than the old one's.
            let after = try await eventuallyValue(within: .seconds(20)) { try await mutex.withLock("ledger") { $0.fence } }
            #expect(after.value > before.value)
            try await eventuallyValue(within: .seconds(20)) { try await cache.invalidate("profile") }
            let origin = FakeOrigin()
            origin.set("v2")
            try await withThrowingTaskGroup(of: String.self) { group in
                for _ in 0..<20 { group.addTask { try await fetch(cache, "profile") { try await origin.load() } } }
                for try await value in group { #expect(value == "v2") }
            }
            #expect(origin.calls == 1)
            await cache.shutdown()
        }
    }
}
