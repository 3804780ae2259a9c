import Benchmark
import Foundation
@_spi(Benchmarks) import Stampede
import StampedeRedis

/// The cache's hot paths that need no network: joining a single flight, decoding the stored
/// envelope (from the hit path's hash fields and from a fill message), encoding and decoding
/// a value with the default codec, and the freshness decision. Allocations are the figure
/// that must not creep up; wall-clock time is reported, and left out on CI (shared machines).
/// Names have no spaces: `benchmark thresholds check` looks stored thresholds up by the raw
/// name, while `thresholds update` writes them with spaces turned into underscores.
let benchmarks: @Sendable () -> Void = {
    let onCI = ProcessInfo.processInfo.environment["CI"] != nil
    Benchmark.defaultConfiguration = .init(
        metrics: onCI ? [.mallocCountTotal] : [.wallClock, .mallocCountTotal, .throughput],
        warmupIterations: 10,
        scalingFactor: .kilo,
        maxDuration: .seconds(3),
        maxIterations: 1_000,
        thresholds: [
            .mallocCountTotal: .init(relative: [.p90: 5], absolute: [.p90: 2]),
            .wallClock: .init(relative: [.p90: 35]),
        ]
    )

    Benchmark("single-flight-join-100-callers", configuration: .init(scalingFactor: .one)) { benchmark in
        let flights = SingleFlight<String, Int>()
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            let total = try await withThrowingTaskGroup(of: Int.self) { group in
                for _ in 0..<100 {
                    group.addTask {
                        // The first caller's operation yields while the others arrive and join.
                        try await flights.run(key: "hot") {
                            for _ in 0..<10 { await Task.yield() }
                            return 1
                        }.value
                    }
                }
                return try await group.reduce(0, +)
            }
            blackHole(total)
        }
        benchmark.stopMeasurement()
    }

    let value = [UInt8](repeating: UInt8(ascii: "x"), count: 100)
    let fields: [RedisValue] = [.bulkString(value), .bulkString(Array("2:1764590000000:1764590300000:120:0".utf8))]
    Benchmark("envelope-decode-hash-fields") { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(CacheFormat.entry(hashFields: fields))
        }
    }

    let message = Array("V11:app:user:421764590000000:1764589990000:0".utf8) + value
    // Measure the decoding that succeeds, not an early rejection.
    guard CacheFormat.entry(hashFields: fields) != nil, case .filled("app:user:42", _?)? = CacheFormat.Message(payload: message) else {
        fatalError("the benchmark's entry and message must decode")
    }
    Benchmark("envelope-decode-fill-message") { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(CacheFormat.Message(payload: message))
        }
    }

    struct Profile: Codable, Sendable {
        var id: Int
        var name: String
        var email: String
        var roles: [String]
        var score: Double
    }
    let codec = JSONCacheCodec()
    let profile = Profile(id: 42, name: "Ada Lovelace", email: "ada@example.com", roles: ["admin", "author"], score: 0.97)
    let encoded = try! codec.encode(profile)
    Benchmark("value-encode-json") { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(try codec.encode(profile))
        }
    }
    Benchmark("value-decode-json") { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(try codec.decode(Profile.self, from: encoded))
        }
    }
    Benchmark("value-raw-bytes-round-trip") { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(try codec.decode([UInt8].self, from: try codec.encode(value)))
        }
    }

    let entry = StoredEntry(value: value, freshUntil: 1_764_590_000_000, staleUntil: 1_764_590_300_000, loadDuration: 120)
    let policy = CachePolicy(timeToLive: .seconds(60), staleWhileRevalidate: .seconds(300), earlyRefreshBeta: 1)
    Benchmark("policy-decision-fresh-with-early-refresh-draw") { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(policy.freshness(of: entry, now: 1_764_589_000_000, earlyRefreshDraw: policy.earlyRefreshDraw()))
        }
    }
    Benchmark("policy-decision-stale-window") { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(policy.freshness(of: entry, now: 1_764_590_100_000, earlyRefreshDraw: 0))
        }
    }
}
