import ArgumentParser
import Foundation
import StampedeRedis

/// A miss storm, three ways side by side: naive cache-aside, cache-aside behind an
/// in-process single flight, and the full loader. Same processes, tasks, keys and loader.
struct CacheBenchmark: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cache-benchmark",
        abstract: "Miss storm across processes: origin calls, caller latency and Redis commands for naive, local and stampede.",
        discussion: """
            Without --redis, starts a throwaway redis-server. With --redis, uses keys under \
            'stampede:bench:cache:' only and deletes them after each storm.
            """
    )

    @Option(help: "Redis URL. Default: a throwaway server.")
    var redis: String?
    @Option(help: "Worker processes.")
    var processes: Int = 4
    @Option(help: "Concurrent callers per process, released at one instant.")
    var tasks: Int = 50
    @Option(parsing: .upToNextOption, help: "Key counts to storm (each a separate storm).")
    var keys: [Int] = [1, 8]
    @Option(help: "How long the simulated origin takes, in milliseconds.")
    var loadMs: Int = 100
    @Option(help: "Rounds; each figure is the median over them.")
    var rounds: Int = 3

    func validate() throws {
        guard (1...64).contains(processes) else { throw ValidationError("--processes must be within 1...64") }
        guard (1...10_000).contains(tasks) else { throw ValidationError("--tasks must be within 1...10000") }
        guard !keys.isEmpty, keys.allSatisfy({ (1...10_000).contains($0) }) else { throw ValidationError("--keys must be within 1...10000") }
        guard (0...60_000).contains(loadMs) else { throw ValidationError("--load-ms must be within 0...60000") }
        guard (1...20).contains(rounds) else { throw ValidationError("--rounds must be within 1...20") }
    }

    struct Storm {
        var originCalls: Int
        var latenciesMs: [Double]
        /// How long the origin calls themselves took (the loader's own time).
        var originMs: [Double]
        var commands: Int
    }

    func run() async throws {
        try await ServerChoice.run(url: redis) { try await measure(on: $0) }
    }

    private func measure(on server: ServerChoice) async throws {
        let client = try RedisClient(configuration: server.configuration)
        let url = server.url
        print("Miss storm: \(processes) processes x \(tasks) callers, loader \(loadMs) ms, \(rounds) rounds (medians).")

        var storms: [String: [Storm]] = [:]
        for round in 1...rounds {
            for keyCount in keys {
                for strategy in Strategy.allCases {
                    let storm = try await runStorm(
                        client: client, url: url, strategy: strategy, keys: keyCount,
                        namespace: "stampede:bench:cache:\(round):\(keyCount):\(strategy.rawValue)")
                    storms["\(keyCount) \(strategy.rawValue)", default: []].append(storm)
                }
            }
            print("  round \(round)/\(rounds) done")
        }
        await client.shutdown()

        print("")
        print("| keys | strategy | origin calls per key | caller p50 ms | caller p99 ms | loader p50 ms | added p99 ms | Redis commands sent per process per key |")
        print("|---:|---|---:|---:|---:|---:|---:|---:|")
        for keyCount in keys {
            for strategy in Strategy.allCases {
                let runs = storms["\(keyCount) \(strategy.rawValue)"]!
                func median(_ values: [Double]) -> Double { values.sorted()[values.count / 2] }
                let calls = median(runs.map { Double($0.originCalls) / Double(keyCount) })
                let p50 = median(runs.map { percentile($0.latenciesMs, 0.5) })
                let p99 = median(runs.map { percentile($0.latenciesMs, 0.99) })
                let loader = median(runs.map { percentile($0.originMs, 0.5) })
                // Added: what callers waited beyond the loader's own (measured) time.
                let added = median(runs.map { percentile($0.latenciesMs, 0.99) - percentile($0.originMs, 0.5) })
                let commands = median(runs.map { Double($0.commands) / Double(processes * keyCount) })
                print(String(format: "| %d | %@ | %.1f | %.1f | %.1f | %.1f | %.1f | %.1f |",
                             keyCount, strategy.rawValue, calls, p50, p99, loader, added, commands))
            }
        }
    }

    private func percentile(_ values: [Double], _ p: Double) -> Double {
        let sorted = values.sorted()
        return sorted[min(sorted.count - 1, Int(Double(sorted.count) * p))]
    }

    private func runStorm(client: RedisClient, url: String, strategy: Strategy, keys: Int, namespace: String) async throws -> Storm {
        let counter = namespace + ":origin"
        // Every process starts its callers at one instant, after all have started.
        let startAt = monotonicNanoseconds() + 2_000_000_000
        let outputs = try runWorkers(Array(repeating: [
            "cache-worker", "--redis", url, "--namespace", namespace, "--origin-counter", counter,
            "--strategy", strategy.rawValue, "--keys", "\(keys)", "--tasks", "\(tasks)", "--load-ms", "\(loadMs)",
            "--start-at", "\(startAt)", "--report-latencies",
        ], count: processes))
        var latencies: [Double] = []
        var originTimes: [Double] = []
        var commands = 0
        for line in outputs.flatMap({ $0.split(separator: "\n") }) {
            if line.hasPrefix("latencies-us ") {
                latencies += line.dropFirst(13).split(separator: ",").compactMap { Double($0) }.map { $0 / 1000 }
            } else if line.hasPrefix("origin-us ") {
                originTimes += line.dropFirst(10).split(separator: ",").compactMap { Double($0) }.map { $0 / 1000 }
            } else if line.hasPrefix("commands ") {
                commands += Int(line.dropFirst(9)) ?? 0
            }
        }
        let originCalls = try await client.send("GET", RedisArgument(counter)).int ?? 0
        var keysToDelete: [RedisArgument] = [RedisArgument(counter)]
        for index in 0..<keys {
            let entry = "{\(namespace):k\(index)}"
            keysToDelete += [RedisArgument(entry), RedisArgument(entry + ":lock"), RedisArgument(entry + ":fence"),
                             RedisArgument("\(namespace):aside:k\(index)")]
        }
        try await client.send(["DEL"] + keysToDelete)
        return Storm(originCalls: originCalls, latenciesMs: latencies, originMs: originTimes, commands: commands)
    }

}
