import ArgumentParser
import Foundation
@_spi(Benchmarks) import Stampede
import StampedeRedis

/// Hit storms: many keys, one hot key, and the near cache, beside `redis-benchmark` on the
/// same server in the same run.
struct HitBenchmark: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hit",
        abstract: "Hit storms on fresh keys (many keys, one hot key, near cache) beside redis-benchmark.",
        discussion: """
            Without --redis, starts a throwaway redis-server. With --redis, uses keys under \
            'stampede:bench:hit' and 'key:__rand_int__' (redis-benchmark's) and deletes them afterwards.
            """
    )

    @Option(help: "Redis URL. Default: $STAMPEDE_REDIS_URL, else a throwaway server.")
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
    @Option(help: "Rounds: redis-benchmark and the chosen storms run this many times in turn; the table shows medians, and the range of each ratio to the same round's redis-benchmark.")
    var rounds: Int = 1

    enum Storm: String, CaseIterable, ExpressibleByArgument {
        case get, hmget, many, hot, hotNear = "hot-near", near
    }

    func validate() throws {
        guard tasks >= 16, tasks % 16 == 0, tasks <= 4096 else { throw ValidationError("--tasks must be a multiple of 16 within 16...4096") }
        guard (1...1_000_000).contains(keys) else { throw ValidationError("--keys must be within 1...1000000") }
        guard (1...600).contains(duration) else { throw ValidationError("--duration must be within 1...600") }
        guard (1...1_048_576).contains(valueSize) else { throw ValidationError("--value-size must be within 1...1048576") }
        guard (1...64).contains(connections) else { throw ValidationError("--connections must be within 1...64") }
        guard (1...100).contains(rounds) else { throw ValidationError("--rounds must be within 1...100") }
    }

    func run() async throws {
        try await ServerChoice.run(url: ServerChoice.userURL(redis)) { try await measure(on: $0) }
    }

    private func measure(on server: ServerChoice) async throws {
        var configuration = server.configuration
        configuration.connectionCount = connections
        let client = try RedisClient(configuration: configuration)
        let executor: (any TaskExecutor)? = onEventLoop ? client.taskExecutor : nil
        let namespace = "stampede:bench:hit"
        let value = [UInt8](repeating: UInt8(ascii: "x"), count: valueSize)
        // The keys outlive the run (every round of every storm, and redis-benchmark's turns),
        // so that the last round still measures hits; they expire within an hour of its end.
        let keptSeconds = rounds * (Storm.allCases.count * duration + 60) + 3600
        let policy = CachePolicy(timeToLive: .seconds(keptSeconds), earlyRefreshBeta: nil)
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
                let entry = CacheFormat.Keys(namespace: namespace, key: "k\(index)")
                cleanup += [RedisArgument(entry.entry), RedisArgument(entry.fence), RedisArgument(entry.entry + ":plain")]
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
            // The client's own keys, for its GET storm: plain strings beside the entries.
            let asideKeys = chosen.contains(.get) ? (0..<keyCount).map { RedisArgument(CacheFormat.Keys(namespace: namespace, key: "k\($0)").entry + ":plain") } : []
            if chosen.contains(.get) {
                for batch in stride(from: 0, to: keyCount, by: 1_000) {
                    _ = try await client.pipeline(asideKeys[batch..<min(keyCount, batch + 1_000)].map { ["SET", $0, RedisArgument(bytes: value), "PX", RedisArgument(keptSeconds * 1000)] })
                }
            }
            var results = RoundResults()
            for round in 1...rounds {
                if rounds > 1 { print("Round \(round) of \(rounds)") }
                var rows: [(name: String, rate: Double, cpu: Double?)] = []

                print("redis-benchmark -t get -c 16 -P \(pipeline) ...")
                let redisRate = try benchmark.getsPerSecond(clients: 16, pipeline: pipeline, requests: 1_000_000)
                rows.append(("redis-benchmark -t get -c 16 -P \(pipeline) (\(tasks) in flight)", redisRate, nil))

                if chosen.contains(.get) {
                    // The client alone, the same tasks: what a cache hit costs beyond its own read.
                    print("Client GET: \(tasks) tasks, random keys, \(duration) s ...")
                    let storm = try await self.storm(tasks: tasks, seconds: duration, on: executor) { random in
                        _ = try await client.send("GET", asideKeys[Int(random.next() % UInt64(keyCount))])
                    }
                    rows.append(("client.send GET, \(keys) keys, \(tasks) tasks", storm.rate, storm.cpu))
                }
                if chosen.contains(.hmget) {
                    print("Client HMGET of an entry's two fields: \(tasks) tasks, random keys, \(duration) s ...")
                    let storm = try await self.storm(tasks: tasks, seconds: duration, on: executor) { random in
                        _ = try await client.send(CacheFormat.hitRead(namespace: namespace, key: "k\(random.next() % UInt64(keyCount))"))
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
                if chosen.contains(.near) {
                    print("Near cache: one task, one key, \(duration) s ...")
                    let (rate, cpu, p50) = try await nearHits(near, value: value)
                    rows.append(("near cache hit, one task", rate, cpu))
                    results.nearP50s.append(p50)
                }
                for row in rows { results.record(row.name, rate: row.rate, against: redisRate, cpu: row.cpu) }
            }

            print("")
            print(results.table(rounds: rounds))
            if !results.nearP50s.isEmpty, let nearRate = results.rates(of: "near cache hit, one task") {
                print(String(format: "Near-cache hit: p50 %.0f ns per hit (medians of batches of 1000%@), %d hits per second on one core.",
                             median(results.nearP50s), rounds > 1 ? " and of \(rounds) rounds" : "", Int(median(nearRate))))
            }
        } catch {
            await cleanUp()
            throw error
        }
        await cleanUp()
    }

    /// One task asks the near cache for one key, in batches of 1,000, for the storm's duration:
    /// hits per second, CPU seconds per hit, and the median nanoseconds per hit of a batch.
    private func nearHits(_ near: StampedeCache, value: [UInt8]) async throws -> (rate: Double, cpu: Double, p50: Double) {
        _ = try await near.value(for: "k0") { value }
        _ = try await near.value(for: "k0") { value }
        var batchNanoseconds: [Double] = []
        let batch = 1_000
        let clock = ContinuousClock()
        let end = clock.now + .seconds(duration)
        let cpuBefore = ProcessCPU.seconds()
        var hits = 0
        while clock.now < end {
            let start = clock.now
            for _ in 0..<batch { _ = try await near.value(for: "k0") { value } }
            batchNanoseconds.append((clock.now - start).inSeconds * 1e9 / Double(batch))
            hits += batch
        }
        let cpu = (ProcessCPU.seconds() - cpuBefore) / Double(hits)
        let rate = 1e9 / (batchNanoseconds.reduce(0, +) / Double(batchNanoseconds.count))
        return (rate, cpu, median(batchNanoseconds))
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

/// Each row's figures over the rounds of a `bench hit`, in the order the rows came.
struct RoundResults {
    private var order: [String] = []
    private var figures: [String: [(rate: Double, ratio: Double, cpu: Double?)]] = [:]
    var nearP50s: [Double] = []

    /// One round's figure for a row, with the ratio to that round's redis-benchmark.
    mutating func record(_ name: String, rate: Double, against redisRate: Double, cpu: Double?) {
        if figures[name] == nil { order.append(name) }
        figures[name, default: []].append((rate, rate / redisRate, cpu))
    }

    func rates(of name: String) -> [Double]? { figures[name]?.map(\.rate) }

    /// The Markdown table: medians, and the range of each ratio that varied over the rounds.
    func table(rounds: Int) -> String {
        var lines = [
            "| storm | per second\(rounds > 1 ? " (median)" : "") | against redis-benchmark | process CPU per call |",
            "|---|---:|---:|---:|",
        ]
        for name in order {
            let runs = figures[name]!
            let ratios = runs.map(\.ratio)
            var against = String(format: "%.2fx", median(ratios))
            if ratios.min()! != ratios.max()! { against += String(format: " (%.2f-%.2f)", ratios.min()!, ratios.max()!) }
            let cpus = runs.compactMap(\.cpu)
            let cpu = cpus.isEmpty ? "(other process)" : String(format: "%.2f us", median(cpus) * 1e6)
            lines.append("| \(name) | \(Int(median(runs.map(\.rate)))) | \(against) | \(cpu) |")
        }
        return lines.joined(separator: "\n")
    }
}
