import Benchmark
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
    Benchmark.defaultConfiguration = .init(
        metrics: [.throughput, .wallClock, .mallocCountTotal],
        warmupIterations: 1,
        scalingFactor: .kilo,
        maxDuration: .seconds(10),
        maxIterations: 20
    )

    for tasks in [1, 16, 256] {
        Benchmark("GET, \(tasks) concurrent tasks") { benchmark in
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
