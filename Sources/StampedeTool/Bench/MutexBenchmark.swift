import ArgumentParser
import Foundation
import Stampede
import StampedeRedis

/// RedisMutex's uncontended rate: what a lock costs when nobody else wants it. Contention
/// across processes (hand-off latency, mutual exclusion) is `stampede storm --scenario lock`.
struct MutexBenchmark: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mutex",
        abstract: "RedisMutex: uncontended acquire+release rate (contention: storm --scenario lock).",
        discussion: """
            Without --redis, starts a throwaway redis-server. With --redis, uses keys under \
            'stampede:bench:mutex:' only and deletes them afterwards.
            """
    )

    @Option(help: "Redis URL. Default: a throwaway server.")
    var redis: String?
    @Option(help: "Sequential withLock calls for the uncontended rate.")
    var iterations: Int = 5_000
    func validate() throws {
        guard iterations >= 100 else { throw ValidationError("--iterations must be at least 100") }
    }

    func run() async throws {
        try await ServerChoice.run(url: redis) { try await measure(on: $0) }
    }

    private func measure(on server: ServerChoice) async throws {
        let prefix = "stampede:bench:mutex:"
        let client = try RedisClient(configuration: server.configuration)
        let mutex = RedisMutex(client: client, keyPrefix: prefix)

        // Uncontended: one task, one connection, acquire and release back to back.
        let clock = ContinuousClock()
        let start = clock.now
        do {
            for _ in 0..<iterations { try await mutex.withLock("uncontended") { _ in } }
        } catch {
            _ = try? await client.send("DEL", RedisArgument(mutex.keys(for: "uncontended").fence))
            await client.shutdown()
            throw error
        }
        let rate = Double(iterations) / (clock.now - start).inSeconds
        print("Uncontended withLock (acquire + release), one task, one connection: \(Int(rate)) per second")
        try await client.send("DEL", RedisArgument(mutex.keys(for: "uncontended").fence))
        await client.shutdown()
    }
}
