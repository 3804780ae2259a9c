import Benchmark
import EmbeddedRedis
import Stampede
import StampedeRedis

/// A throwaway redis-server, a cache with a near cache and one without, and one filled key.
let fixture = Task { () async throws -> (server: RedisServer, cache: StampedeCache, near: StampedeCache) in
    let server = try await RedisServer.start()
    let client = try RedisClient(configuration: RedisConfiguration(url: server.url))
    let policy = CachePolicy(timeToLive: .seconds(3600), earlyRefreshBeta: nil)
    let cache = StampedeCache(client: client, configuration: .init(namespace: "bench", policy: policy))
    let near = StampedeCache(client: client, configuration: .init(namespace: "bench", policy: policy, nearCache: .init()))
    try await near.prepare()
    let value = [UInt8](repeating: 120, count: 100)
    _ = try await cache.value(for: "hot") { value }
    _ = try await near.value(for: "hot") { value }
    _ = try await near.value(for: "hot") { value }
    return (server, cache, near)
}

/// What one cache hit costs, in time and allocations: from the near cache, and from Redis.
let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .mallocCountTotal, .throughput],
        warmupIterations: 1,
        scalingFactor: .kilo,
        maxDuration: .seconds(5),
        maxIterations: 50
    )

    Benchmark("near-cache hit") { benchmark in
        let near = try await fixture.value.near
        let unused = [UInt8]()
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            blackHole(try await near.value(for: "hot") { unused })
        }
        benchmark.stopMeasurement()
    }

    Benchmark("Redis hit, one task") { benchmark in
        let cache = try await fixture.value.cache
        let unused = [UInt8]()
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            blackHole(try await cache.value(for: "hot") { unused })
        }
        benchmark.stopMeasurement()
    }
}
