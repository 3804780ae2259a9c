import ArgumentParser
import Foundation
import Stampede
import StampedeRedis

/// Figures for RedisMutex: uncontended lock rate and hand-off latency across processes.
struct MutexBenchmark: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mutex-benchmark",
        abstract: "RedisMutex: uncontended acquire+release rate, and hand-off latency with many waiters across processes.",
        discussion: """
            Without --redis, starts a throwaway redis-server. With --redis, uses keys under \
            'stampede:bench:mutex:' only and deletes them afterwards.
            """
    )

    @Option(help: "Redis URL. Default: a throwaway server.")
    var redis: String?
    @Option(help: "Sequential withLock calls for the uncontended rate.")
    var iterations: Int = 5_000
    @Option(help: "Worker processes contending for one lock.")
    var processes: Int = 4
    @Option(help: "Waiting tasks in all, spread over the processes.")
    var waiters: Int = 100
    @Option(help: "How long the contention runs, in seconds.")
    var duration: Int = 5
    @Option(help: "How long each holder keeps the lock, in milliseconds.")
    var holdMs: Int = 1

    func validate() throws {
        guard iterations >= 100 else { throw ValidationError("--iterations must be at least 100") }
        guard (1...64).contains(processes) else { throw ValidationError("--processes must be within 1...64") }
        guard waiters >= processes else { throw ValidationError("--waiters must be at least --processes") }
        guard (1...600).contains(duration) else { throw ValidationError("--duration must be within 1...600 seconds") }
        guard holdMs >= 0 else { throw ValidationError("--hold-ms must not be negative") }
    }

    func run() async throws {
        try await ServerChoice.run(url: redis) { try await measure(on: $0) }
    }

    private func measure(on server: ServerChoice) async throws {
        let prefix = "stampede:bench:mutex:"
        let client = try RedisClient(configuration: server.configuration)
        defer {
            Task {
                _ = try? await client.send("DEL", RedisArgument(prefix + "released-at"), RedisArgument(prefix + "holders"),
                                           RedisArgument(prefix + "{contended}:fence"), RedisArgument(prefix + "{uncontended}:fence"))
                await client.shutdown()
            }
        }
        let mutex = RedisMutex(client: client, keyPrefix: prefix)

        // Uncontended: one task, one connection, acquire and release back to back.
        let clock = ContinuousClock()
        let start = clock.now
        for _ in 0..<iterations { try await mutex.withLock("uncontended") { _ in } }
        let rate = Double(iterations) / (clock.now - start).inSeconds
        print("Uncontended withLock (acquire + release), one task, one connection: \(Int(rate)) per second")

        // Contended: waiters across processes, all on one lock.
        print("Hand-off: \(waiters) waiters in \(processes) processes on one lock, each holding it \(holdMs) ms, for \(duration) s ...")
        let outputs = try runWorkers((0..<processes).map { index in
            let tasks = waiters / processes + (index < waiters % processes ? 1 : 0)
            return [
                "mutex-worker", "--redis", server.url, "--name", "contended", "--mode", "handoff",
                "--key-prefix", prefix, "--tasks", "\(tasks)", "--hold-ms", "\(holdMs)", "--duration-ms", "\(duration * 1000)",
            ]
        })
        var samples: [Int] = []
        var violations = 0
        for line in outputs.flatMap({ $0.split(separator: "\n") }) {
            if line.hasPrefix("samples ") {
                samples += line.dropFirst(8).split(separator: ",").compactMap { Int($0) }
            } else if line.hasPrefix("violations ") {
                violations += Int(line.dropFirst(11)) ?? 0
            }
        }
        samples.sort()
        guard !samples.isEmpty else { throw ToolError("no hand-offs were recorded") }
        func percentile(_ p: Double) -> Double { Double(samples[min(samples.count - 1, Int(Double(samples.count) * p))]) / 1e6 }
        print(String(format: "Hand-offs: %d, p50 %.3f ms, p99 %.3f ms, max %.3f ms; mutual-exclusion violations: %d",
                     samples.count, percentile(0.5), percentile(0.99), percentile(1.0), violations))
        if violations > 0 { throw ToolError("mutual exclusion was violated \(violations) times") }
    }
}
