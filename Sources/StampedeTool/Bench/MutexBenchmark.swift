import ArgumentParser
import EmbeddedRedis
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
            Without --redis, starts a throwaway redis-server (with --replica-acknowledgement, and a \
            replica of it). With --redis, uses keys under 'stampede:bench:mutex:' only and deletes \
            them afterwards.

            --replica-acknowledgement measures, side by side in rounds, the rate without and with \
            LockOptions.replicaAcknowledgement (one replica, WAIT after each acquisition): what \
            waiting for a replica costs an acquisition. With --redis, the server needs a replica.
            """
    )

    @Option(help: "Redis URL. Default: $STAMPEDE_REDIS_URL, else a throwaway server.")
    var redis: String?
    @Option(help: "Sequential withLock calls for the uncontended rate (per round).")
    var iterations: Int = 5_000
    @Flag(help: "Also measure with replicaAcknowledgement (one replica), side by side.")
    var replicaAcknowledgement = false
    @Option(help: "With --replica-acknowledgement: rounds of each, alternating; the medians are shown.")
    var rounds: Int = 3

    func validate() throws {
        guard iterations >= 100 else { throw ValidationError("--iterations must be at least 100") }
        guard (1...100).contains(rounds) else { throw ValidationError("--rounds must be within 1...100") }
    }

    func run() async throws {
        try await ServerChoice.run(url: ServerChoice.userURL(redis)) { server in
            guard replicaAcknowledgement, let master = server.throwaway, let port = master.port else {
                return try await measure(on: server)
            }
            let replica = try await RedisServer.start(.init(extraArguments: ["--replicaof", "127.0.0.1", "\(port)"]))
            defer { replica.stop() }
            say("Started a replica of it at \(replica.url) (stopped at the end).")
            try await measure(on: server)
        }
    }

    private func measure(on server: ServerChoice) async throws {
        let prefix = "stampede:bench:mutex:"
        let client = try RedisClient(configuration: server.configuration)
        let mutex = RedisMutex(client: client, keyPrefix: prefix)
        defer { Task { await client.shutdown() } }
        do {
            if replicaAcknowledgement {
                try await sideBySide(mutex)
            } else {
                let rate = try await uncontendedRate(mutex, options: LockOptions())
                print("Uncontended withLock (acquire + release), one task, one connection: \(Int(rate)) per second")
            }
        } catch {
            _ = try? await client.send("DEL", RedisArgument(mutex.keys(for: "uncontended").fence))
            throw error
        }
        try await client.send("DEL", RedisArgument(mutex.keys(for: "uncontended").fence))
    }

    /// One task, one connection, acquire and release back to back: the rate per second.
    private func uncontendedRate(_ mutex: RedisMutex, options: LockOptions) async throws -> Double {
        let clock = ContinuousClock()
        let start = clock.now
        for _ in 0..<iterations { try await mutex.withLock("uncontended", options: options) { _ in } }
        return Double(iterations) / (clock.now - start).inSeconds
    }

    private func sideBySide(_ mutex: RedisMutex) async throws {
        let acknowledged = LockOptions(replicaAcknowledgement: .init(replicas: 1, timeout: .milliseconds(500)))
        // A replica that just synced hears the stream once it first acknowledged (within a second).
        let deadline = ContinuousClock.now + .seconds(10)
        while (try? await mutex.withLock("uncontended", options: acknowledged) { _ in }) == nil {
            guard ContinuousClock.now < deadline else { throw ToolError("no replica acknowledged a lock within 10 s; does the server have a replica?") }
            try await Task.sleep(for: .milliseconds(100))
        }
        var plain: [Double] = [], waiting: [Double] = []
        for round in 0..<rounds {
            if round % 2 == 0 {
                plain.append(try await uncontendedRate(mutex, options: LockOptions()))
                waiting.append(try await uncontendedRate(mutex, options: acknowledged))
            } else {
                waiting.append(try await uncontendedRate(mutex, options: acknowledged))
                plain.append(try await uncontendedRate(mutex, options: LockOptions()))
            }
        }
        let (without, with) = (median(plain), median(waiting))
        print("Uncontended withLock (acquire + release), one task, one connection, medians of \(rounds) rounds:")
        print("| replicaAcknowledgement | per second | µs per acquisition and release |")
        print("|---|---:|---:|")
        print("| off | \(Int(without)) | \(String(format: "%.1f", 1e6 / without)) |")
        print("| one replica | \(Int(with)) | \(String(format: "%.1f", 1e6 / with)) |")
        print(String(format: "Waiting for the replica adds %.1f µs per acquisition (%.2fx the time).", 1e6 / with - 1e6 / without, without / with))
    }
}
