import Benchmark
import Foundation
import EmbeddedRedis
import StampedeRedis

/// A throwaway redis-server and a client of it, started once for the whole run; the server's
/// supervisor stops it when the benchmark process exits.
let fixture = Task { () async throws -> (server: RedisServer, client: RedisClient) in
    let server = try await RedisServer.start()
    let client = try RedisClient(configuration: RedisConfiguration(url: server.url))
    try await client.send("SET", "bench:value", RedisArgument(bytes: [UInt8](repeating: 120, count: 100)))
    return (server, client)
}

/// GET throughput on one connection with 1, 16 and 256 concurrent tasks, 100-byte values.
let benchmarks: @Sendable () -> Void = {
    // Wall-clock time is left out on CI (shared machines). Allocations are checked against
    // Thresholds/ within 500 per 1,000 GETs for one task (one more allocation per GET fails
    // the check); with 16 and 256 tasks, how often tasks suspend depends on scheduling and
    // moves the count by up to 12% between runs, so the slack there is 1,200.
    let onCI = ProcessInfo.processInfo.environment["CI"] != nil
    Benchmark.defaultConfiguration = .init(
        metrics: onCI ? [.mallocCountTotal] : [.throughput, .wallClock, .mallocCountTotal],
        warmupIterations: 1,
        scalingFactor: .kilo,
        maxDuration: .seconds(10),
        maxIterations: 20,
        thresholds: [.mallocCountTotal: .init(absolute: [.p90: 500])]
    )
    let concurrent = Benchmark.Configuration(thresholds: [.mallocCountTotal: .init(absolute: [.p90: 1_200])])

    for tasks in [1, 16, 256] {
        Benchmark("get-\(tasks)-concurrent-tasks", configuration: tasks == 1 ? Benchmark.defaultConfiguration : concurrent) { benchmark in
            let client = try await fixture.value.client
            let perTask = max(benchmark.scaledIterations.count / tasks, 1)
            benchmark.startMeasurement()
            try await withThrowingTaskGroup(of: Void.self) { group in
                for _ in 0..<tasks {
                    group.addTask {
                        for _ in 0..<perTask { blackHole(try await client.send("GET", "bench:value")) }
                    }
                }
                try await group.waitForAll()
            }
            benchmark.stopMeasurement()
        }
    }
}
