import Benchmark
import Foundation
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
    // Wall-clock time is left out on CI (shared machines). Allocations are checked against
    // Thresholds/ within 500 per 1,000 calls: wake-ups and buffer growth vary from run to
    // run by a few percent; one more allocation per call (+1,000) fails the check.
    let onCI = ProcessInfo.processInfo.environment["CI"] != nil
    Benchmark.defaultConfiguration = .init(
        metrics: onCI ? [.mallocCountTotal] : [.wallClock, .mallocCountTotal, .throughput],
        warmupIterations: 1,
        scalingFactor: .kilo,
        maxDuration: .seconds(5),
        maxIterations: 50,
        thresholds: [.mallocCountTotal: .init(absolute: [.p90: 500])]
    )

    Benchmark("near-cache-hit") { benchmark in
        let near = try await fixture.value.near
        let unused = [UInt8]()
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            blackHole(try await near.value(for: "hot") { unused })
        }
        benchmark.stopMeasurement()
    }

    Benchmark("redis-hit-one-task") { benchmark in
        let cache = try await fixture.value.cache
        let unused = [UInt8]()
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            blackHole(try await cache.value(for: "hot") { unused })
        }
        benchmark.stopMeasurement()
    }
}
