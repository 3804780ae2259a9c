import ArgumentParser
import Foundation
@_spi(Benchmarks) import Stampede
import StampedeRedis

/// Hit storms: many keys, one hot key, and the near cache, beside `redis-benchmark` on the
/// same server in the same run.
struct HitBenchmark: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hit-benchmark",
        abstract: "Hit storms on fresh keys (many keys, one hot key, near cache) beside redis-benchmark.",
        discussion: """
            Without --redis, starts a throwaway redis-server. With --redis, uses keys under \
            'stampede:bench:hit' and 'key:__rand_int__' (redis-benchmark's) and deletes them afterwards.
            """
    )

    @Option(help: "Redis URL. Default: a throwaway server.")
    var redis: String?
    @Option(help: "Concurrent tasks in this process (redis-benchmark gets the same number in flight: -c 16 -P N/16).")
    var tasks: Int = 256
    @Option(help: "Distinct keys in the many-keys storm.")
    var keys: Int = 10_000
    @Option(help: "Seconds per storm.")
    var duration: Int = 5
    @Option(help: "Value size in bytes.")
    var valueSize: Int = 100
    @Flag(help: "Run the storms' tasks on the client's event loop (client.taskExecutor) rather than Swift's default executor.")
    var onEventLoop = false
    @Option(help: "Connections the client opens (RedisConfiguration.connectionCount).")
    var connections: Int = 1
    @Option(parsing: .upToNextOption, help: "Storms to run (redis-benchmark always runs). Default: all.")
    var storms: [Storm] = Storm.allCases

    enum Storm: String, CaseIterable, ExpressibleByArgument {
        case get, hmget, many, hot, hotNear = "hot-near", near
    }

    func validate() throws {
        guard tasks >= 16, tasks % 16 == 0, tasks <= 4096 else { throw ValidationError("--tasks must be a multiple of 16 within 16...4096") }
        guard (1...1_000_000).contains(keys) else { throw ValidationError("--keys must be within 1...1000000") }
        guard (1...600).contains(duration) else { throw ValidationError("--duration must be within 1...600") }
        guard (1...1_048_576).contains(valueSize) else { throw ValidationError("--value-size must be within 1...1048576") }
        guard (1...64).contains(connections) else { throw ValidationError("--connections must be within 1...64") }
    }

    func run() async throws {
        try await ServerChoice.run(url: redis) { try await measure(on: $0) }
    }

    private func measure(on server: ServerChoice) async throws {
        var configuration = server.configuration
        configuration.connectionCount = connections
        let client = try RedisClient(configuration: configuration)
        let executor: (any TaskExecutor)? = onEventLoop ? client.taskExecutor : nil
        let namespace = "stampede:bench:hit"
        let value = [UInt8](repeating: UInt8(ascii: "x"), count: valueSize)
        let policy = CachePolicy(timeToLive: .seconds(3600), earlyRefreshBeta: nil)
        let cache = StampedeCache(client: client, configuration: .init(namespace: namespace, policy: policy))
        let near = StampedeCache(client: client, configuration: .init(
            namespace: namespace, policy: policy, nearCache: .init(capacity: keys, timeToLive: .seconds(60))))
        // Keys go on success and on failure alike: with --redis they are in the user's database.
        let keyCount = keys
        func cleanUp() async {
            await cache.shutdown()
            await near.shutdown()
            var cleanup: [RedisArgument] = ["DEL", "key:__rand_int__"]
            for index in 0..<keyCount {
                let entry = "{\(namespace):k\(index)}"
                cleanup += [RedisArgument(entry), RedisArgument(entry + ":fence"), RedisArgument(entry + ":plain")]
            }
            _ = try? await client.send(cleanup)
            await client.shutdown()
        }
        do {
            try await cache.prepare()
            try await near.prepare()
            print("Filling \(keys) keys of \(valueSize) bytes ...")
            for index in 0..<keys { _ = try await cache.value(for: "k\(index)") { value } }
            try await client.send("SET", "key:__rand_int__", RedisArgument(bytes: value))

            let benchmark = try RedisBenchmark(configuration: server.configuration)
            let pipeline = tasks / 16
            let chosen = Set(storms)
            var rows: [(name: String, rate: Double, cpu: Double?)] = []

            print("redis-benchmark -t get -c 16 -P \(pipeline) ...")
            let redisRate = try benchmark.getsPerSecond(clients: 16, pipeline: pipeline, requests: 1_000_000)
            rows.append(("redis-benchmark -t get -c 16 -P \(pipeline) (\(tasks) in flight)", redisRate, nil))

            if chosen.contains(.get) {
                // The client alone, the same tasks: what a cache hit costs beyond its own read.
                print("Client GET: \(tasks) tasks, random keys, \(duration) s ...")
                let asideKeys = (0..<keyCount).map { RedisArgument("{\(namespace):k\($0)}:plain") }
                for batch in stride(from: 0, to: keyCount, by: 1_000) {
                    _ = try await client.pipeline(asideKeys[batch..<min(keyCount, batch + 1_000)].map { ["SET", $0, RedisArgument(bytes: value), "PX", "3600000"] })
                }
                let storm = try await self.storm(tasks: tasks, seconds: duration, on: executor) { random in
                    _ = try await client.send("GET", asideKeys[Int(random.next() % UInt64(keyCount))])
                }
                rows.append(("client.send GET, \(keys) keys, \(tasks) tasks", storm.rate, storm.cpu))
            }
            if chosen.contains(.hmget) {
                print("Client HMGET of an entry's two fields: \(tasks) tasks, random keys, \(duration) s ...")
                let storm = try await self.storm(tasks: tasks, seconds: duration, on: executor) { random in
                    _ = try await client.send("HMGET", RedisArgument("{\(namespace):k\(random.next() % UInt64(keyCount))}"), "v", "m")
                }
                rows.append(("client.send HMGET of an entry's 2 fields, \(keys) keys, \(tasks) tasks", storm.rate, storm.cpu))
            }
            if chosen.contains(.many) {
                print("Many keys: \(tasks) tasks, random keys, \(duration) s ...")
                let storm = try await self.storm(tasks: tasks, seconds: duration, on: executor) { random in
                    _ = try await cache.value(for: "k\(random.next() % UInt64(keyCount))") { value }
                }
                rows.append(("cache.value, \(keys) keys, \(tasks) tasks", storm.rate, storm.cpu))
            }
            if chosen.contains(.hot) {
                print("Hot key: \(tasks) tasks, one key, \(duration) s ...")
                let storm = try await self.storm(tasks: tasks, seconds: duration, on: executor) { _ in
                    _ = try await cache.value(for: "k0") { value }
                }
                rows.append(("cache.value, one hot key, \(tasks) tasks", storm.rate, storm.cpu))
            }
            if chosen.contains(.hotNear) {
                print("Hot key with the near cache: \(tasks) tasks, one key, \(duration) s ...")
                _ = try await near.value(for: "k0") { value }
                let storm = try await self.storm(tasks: tasks, seconds: duration, on: executor) { _ in
                    _ = try await near.value(for: "k0") { value }
                }
                rows.append(("cache.value, one hot key, \(tasks) tasks, near cache", storm.rate, storm.cpu))
            }
            var nearSummary: String?
            if chosen.contains(.near) {
                print("Near cache: one task, one key, \(duration) s ...")
                _ = try await near.value(for: "k0") { value }
                _ = try await near.value(for: "k0") { value }
                var batchNanoseconds: [Double] = []
                let batch = 1_000
                let clock = ContinuousClock()
                let end = clock.now + .seconds(duration)
                let cpuBefore = ProcessCPU.seconds()
                var nearHits = 0
                while clock.now < end {
                    let start = clock.now
                    for _ in 0..<batch { _ = try await near.value(for: "k0") { value } }
                    batchNanoseconds.append((clock.now - start).inSeconds * 1e9 / Double(batch))
                    nearHits += batch
                }
                let cpu = (ProcessCPU.seconds() - cpuBefore) / Double(nearHits)
                batchNanoseconds.sort()
                let nearP50 = batchNanoseconds[batchNanoseconds.count / 2]
                let nearRate = 1e9 / (batchNanoseconds.reduce(0, +) / Double(batchNanoseconds.count))
                rows.append(("near cache hit, one task", nearRate, cpu))
                nearSummary = String(format: "Near-cache hit: p50 %.0f ns per hit (medians of batches of %d), %d hits per second on one core.",
                                     nearP50, batch, Int(nearRate))
            }

            print("")
            print("| storm | per second | against redis-benchmark | process CPU per call |")
            print("|---|---:|---:|---:|")
            for row in rows {
                let cpu = row.cpu.map { String(format: "%.2f us", $0 * 1e6) } ?? "(other process)"
                print(String(format: "| %@ | %d | %.2fx | %@ |", row.name, Int(row.rate), row.rate / redisRate, cpu))
            }
            if let nearSummary { print(nearSummary) }
        } catch {
            await cleanUp()
            throw error
        }
        await cleanUp()
    }

    /// `tasks` tasks (on `executor` when given) run `body` back to back for `seconds`; returns
    /// calls per second and CPU seconds per call. Each
    /// task has its own generator for picking keys (the system's costs a system call a draw).
    private func storm(
        tasks: Int, seconds: Int, on executor: (any TaskExecutor)?, _ body: @escaping @Sendable (inout SplitMix64) async throws -> Void
    ) async throws -> (rate: Double, cpu: Double) {
        let clock = ContinuousClock()
        let cpuBefore = ProcessCPU.seconds()
        let start = clock.now
        let end = start + .seconds(seconds)
        let calls = try await withThrowingTaskGroup(of: Int.self) { group in
            for task in 0..<tasks {
                group.addTask(executorPreference: executor) {
                    var calls = 0
                    var random = SplitMix64(seed: UInt64(task))
                    while clock.now < end {
                        try await body(&random)
                        calls += 1
                    }
                    return calls
                }
            }
            return try await group.reduce(0, +)
        }
        let cpu = ProcessCPU.seconds() - cpuBefore
        return (Double(calls) / (clock.now - start).inSeconds, cpu / Double(max(calls, 1)))
    }
}
