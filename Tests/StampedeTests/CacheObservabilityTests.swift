import Logging
import MetricsTestKit
@_spi(Benchmarks) @testable import Stampede
import StampedeRedis
import StampedeTestSupport
import Testing

/// What a cache tells its app: through the caller's logger, and in metrics apart per cache.
@Suite("StampedeCache logs and metrics", .timeLimit(.minutes(2)))
struct CacheObservabilityTests {
    @Test("the per-call logger receives the lease-lost warning of the load it led")
    func perCallLoggerGetsTheLostLease() async throws {
        try await withSharedClient { client, _ in
            let clock = ManualClock()
            let cacheLogs = LogCapture(), requestLogs = LogCapture()
            let cache = StampedeCache(
                client: client, configuration: .init(namespace: uniquePrefix(), policy: .init(earlyRefreshBeta: nil, leaseDuration: .seconds(3))),
                logger: cacheLogs.logger(), metricsFactory: nil, clock: clock)
            let origin = FakeOrigin()
            let lookup = Task {
                try await cache.value(for: "report", logger: requestLogs.logger(label: "request")) { try await origin.loadWhenReleased() }
            }
            await origin.waitForCalls(1)
            // Someone takes the lock over: the watchdog's next renewal finds the token gone.
            try await client.send("SET", RedisArgument(cache.keys(for: "report").lock), "someone-else", "PX", "60000")
            await clock.waitForSleepers(1)
            clock.advance(by: .seconds(1))
            let error = await #expect(throws: StampedeError.self) { try await lookup.value }
            #expect(error?.code == .leaseLost)
            #expect(requestLogs.all.contains { $0.level == .warning && $0.message.contains("lease lost") }, "\(requestLogs.all)")
            #expect(!cacheLogs.all.contains { $0.message.contains("lease lost") }, "the call's logger, not the cache's")
            origin.release()
            await cache.shutdown()
        }
    }

    @Test("a load without Redis is a warning and counted in stampede.cache.loads_without_redis")
    func fallbackIsCounted() async throws {
        var configuration = try RedisConfiguration(url: "redis://127.0.0.1:1")
        configuration.connectTimeout = .milliseconds(200)
        try await withClient(configuration) { client async throws in
            let metrics = TestMetrics()
            let logs = LogCapture()
            let cache = StampedeCache(client: client, configuration: .init(namespace: uniquePrefix()), logger: logs.logger(), metricsFactory: metrics)
            #expect(try await fetch(cache, "k") { "from the origin" } == "from the origin")
            #expect(try metrics.cacheCounter("loads_without_redis", of: cache).totalValue == 1)
            #expect(logs.all.contains { $0.level == .warning && $0.message.contains("Redis unavailable") })
        }
    }

    @Test("two caches in one process report apart: the namespace is a dimension of every metric")
    func namespaceDimension() async throws {
        try await withSharedClient { client, _ in
            let metrics = TestMetrics()
            let profiles = StampedeCache(client: client, configuration: .init(namespace: uniquePrefix() + "profiles"), metricsFactory: metrics)
            let orders = StampedeCache(client: client, configuration: .init(namespace: uniquePrefix() + "orders"), metricsFactory: metrics)
            _ = try await fetch(profiles, "a") { "1" }
            _ = try await fetch(profiles, "a") { "1" }
            _ = try await fetch(orders, "b") { "2" }
            #expect(try metrics.cacheCounter("hits", of: profiles).totalValue == 1)
            #expect(try metrics.cacheCounter("loads", of: profiles).totalValue == 1)
            #expect(try metrics.cacheCounter("loads", of: orders).totalValue == 1)
            #expect((try? metrics.cacheCounter("hits", of: orders).totalValue) ?? 0 == 0)
            await profiles.shutdown()
            await orders.shutdown()
        }
    }
}
