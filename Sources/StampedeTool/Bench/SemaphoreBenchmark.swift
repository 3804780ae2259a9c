import ArgumentParser
import Foundation
import Stampede
import StampedeRedis
import Synchronization

/// The locks' other jobs, measured: a semaphore's permit hand-off beside a mutex's under
/// contention, and what a duplicate-submission guard costs a request beside no guard.
struct SemaphoreBenchmark: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "semaphore",
        abstract: "RedisSemaphore hand-off beside RedisMutex under contention; SubmissionGuard's cost per request.",
        discussion: """
            Contention: --instances instances (each its own client, subscription and in-process \\
            queue, as separate processes would have) of --tasks tasks each contend for one permit \\
            of a RedisSemaphore, then for one RedisMutex lock, each holding it --hold-ms, for \\
            --duration seconds; rounds alternate. The hand-off is the time from a holder's \\
            release to the next holder's first line. Redis commands are Redis's own count \\
            (INFO commandstats) per acquisition.

            Guard: --requests sequential calls, each with its own key, through \\
            SubmissionGuard.once and without it.

            Without --redis (or STAMPEDE_REDIS_URL), runs against a throwaway redis-server. With \\
            --redis, uses keys under 'stampede:bench:semaphore:' only.
            """
    )

    @Option(help: "Redis URL. Default: $STAMPEDE_REDIS_URL, else a throwaway server.")
    var redis: String?
    @Option(help: "Contending instances.")
    var instances: Int = 4
    @Option(help: "Contending tasks per instance.")
    var tasks: Int = 10
    @Option(help: "How long each holder keeps the permit or the lock, in milliseconds.")
    var holdMs: Int = 1
    @Option(help: "Seconds each contention run lasts.")
    var duration: Double = 3
    @Option(help: "Rounds of each, alternating; the medians are shown.")
    var rounds: Int = 3
    @Option(help: "Guard: sequential requests per measurement.")
    var requests: Int = 2_000

    func validate() throws {
        guard (1...64).contains(instances) else { throw ValidationError("--instances must be within 1...64") }
        guard (1...1_000).contains(tasks) else { throw ValidationError("--tasks must be within 1...1000") }
        guard (0...1_000).contains(holdMs) else { throw ValidationError("--hold-ms must be within 0...1000") }
        guard duration >= 0.1, duration <= 600 else { throw ValidationError("--duration must be within 0.1...600") }
        guard (1...20).contains(rounds) else { throw ValidationError("--rounds must be within 1...20") }
        guard (10...1_000_000).contains(requests) else { throw ValidationError("--requests must be within 10...1000000") }
    }

    func run() async throws {
        try await ServerChoice.run(url: ServerChoice.userURL(redis)) { server in
            let prefix = "stampede:bench:semaphore:\(UInt32.random(in: 0...UInt32.max)):"
            let admin = try RedisClient(configuration: server.configuration)
            defer { Task { await admin.shutdown() } }
            var figures: [String: [Double]] = [:]
            for round in 0..<rounds {
                for kind in round % 2 == 0 ? ["semaphore", "mutex"] : ["mutex", "semaphore"] {
                    let result = try await contend(kind, prefix: prefix + "\(round):", server: server, admin: admin)
                    figures["\(kind) p50", default: []].append(result.handoffP50)
                    figures["\(kind) p99", default: []].append(result.handoffP99)
                    figures["\(kind) commands", default: []].append(result.commandsPerAcquisition)
                    figures["\(kind) rate", default: []].append(result.perSecond)
                }
                for guarded in round % 2 == 0 ? [true, false] : [false, true] {
                    let (micros, commands) = try await requestCost(guarded: guarded, prefix: prefix + "\(round):once:", admin: admin, server: server)
                    figures["guard \(guarded) us", default: []].append(micros)
                    figures["guard \(guarded) commands", default: []].append(commands)
                }
                say("  round \(round + 1)/\(rounds) done")
            }
            _ = try? await Keyspace.delete(matching: prefix + "*", admin)
            _ = try? await Keyspace.delete(matching: "{" + prefix + "*", admin)
            let m = figures.mapValues { median($0) }
            print("")
            print("Contention: \(instances) instances x \(tasks) tasks on one permit / one lock, held \(holdMs) ms, \(format(duration)) s; medians of \(rounds) rounds")
            print("")
            print("| | acquisitions/s | hand-off p50 ms | hand-off p99 ms | Redis commands per acquisition |")
            print("|---|---:|---:|---:|---:|")
            for kind in ["semaphore", "mutex"] {
                print("| \(kind == "mutex" ? "RedisMutex" : "RedisSemaphore (1 permit)") | \(Int(m["\(kind) rate"]!)) | \(String(format: "%.3f", m["\(kind) p50"]!)) | \(String(format: "%.3f", m["\(kind) p99"]!)) | \(String(format: "%.2f", m["\(kind) commands"]!)) |")
            }
            print("")
            print("Guard: \(requests) sequential requests, each its own key; medians of \(rounds) rounds")
            print("")
            print("| | µs per request | Redis commands per request |")
            print("|---|---:|---:|")
            print("| without a guard | \(String(format: "%.1f", m["guard false us"]!)) | \(String(format: "%.2f", m["guard false commands"]!)) |")
            print("| SubmissionGuard.once | \(String(format: "%.1f", m["guard true us"]!)) | \(String(format: "%.2f", m["guard true commands"]!)) |")
        }
    }

    private func format(_ seconds: Double) -> String { seconds == seconds.rounded() ? String(Int(seconds)) : String(seconds) }

    private struct Contention {
        var perSecond: Double
        var handoffP50: Double
        var handoffP99: Double
        var commandsPerAcquisition: Double
    }

    /// Instances of `kind` contending for one permit (or lock) for the duration.
    private func contend(_ kind: String, prefix: String, server: ServerChoice, admin: RedisClient) async throws -> Contention {
        let clients = try (0..<instances).map { _ in try RedisClient(configuration: server.configuration) }
        defer { for client in clients { Task { await client.shutdown() } } }
        let record = HandoffRecord()
        let hold = Duration.milliseconds(holdMs)
        let end = ContinuousClock.now + .milliseconds(Int(duration * 1000))
        let options = LockOptions(leaseDuration: .seconds(10), maximumWait: .seconds(60))
        let before = try await Keyspace.commandsProcessed(admin).values.reduce(0, +)
        let started = ContinuousClock.now
        try await withThrowingTaskGroup(of: Void.self) { group in
            for client in clients {
                let semaphore = RedisSemaphore(client: client, keyPrefix: prefix, permits: 1)
                let mutex = RedisMutex(client: client, keyPrefix: prefix)
                for _ in 0..<tasks {
                    group.addTask {
                        while ContinuousClock.now < end {
                            let body: @Sendable (Lease) async throws -> Void = { _ in
                                record.acquired(at: ContinuousClock.now)
                                if hold > .zero { try await Task.sleep(for: hold) }
                                record.releasing(at: ContinuousClock.now)
                            }
                            if kind == "mutex" {
                                try await mutex.withLock("contended", options: options, body)
                            } else {
                                try await semaphore.withPermit("contended", options: options, body)
                            }
                        }
                    }
                }
            }
            try await group.waitForAll()
        }
        let elapsed = (ContinuousClock.now - started).inSeconds
        let after = try await Keyspace.commandsProcessed(admin).values.reduce(0, +)
        let (count, p50, p99) = record.summary()
        return Contention(
            perSecond: Double(count) / elapsed, handoffP50: p50, handoffP99: p99,
            commandsPerAcquisition: count == 0 ? 0 : Double(max(0, after - before - 1)) / Double(count))
    }

    /// The request's own work: none, so that the figures are the guard's alone.
    @Sendable private static func body(_ index: Int) async throws -> Int { index }

    /// µs and Redis commands per request, with or without the guard.
    private func requestCost(guarded: Bool, prefix: String, admin: RedisClient, server: ServerChoice) async throws -> (Double, Double) {
        let client = try RedisClient(configuration: server.configuration)
        defer { Task { await client.shutdown() } }
        let submissions = SubmissionGuard(client: client, keyPrefix: prefix, window: .seconds(60))
        let before = try await Keyspace.commandsProcessed(admin).values.reduce(0, +)
        let started = ContinuousClock.now
        for index in 0..<requests {
            if guarded {
                _ = try await submissions.once("request-\(index)") { try await Self.body(index) }
            } else {
                _ = try await Self.body(index)
            }
        }
        let elapsed = ContinuousClock.now - started
        let after = try await Keyspace.commandsProcessed(admin).values.reduce(0, +)
        return (elapsed.inSeconds * 1e6 / Double(requests), Double(max(0, after - before - 1)) / Double(requests))
    }
}

/// Hand-offs: from one holder's release to the next holder's first line.
private final class HandoffRecord: Sendable {
    private struct State {
        var lastRelease: ContinuousClock.Instant?
        var handoffs: [Double] = []
        var acquisitions = 0
    }
    private let state = Mutex(State())

    func acquired(at instant: ContinuousClock.Instant) {
        state.withLock { state in
            state.acquisitions += 1
            if let last = state.lastRelease { state.handoffs.append((instant - last).inSeconds * 1000) }
            state.lastRelease = nil
        }
    }

    func releasing(at instant: ContinuousClock.Instant) {
        state.withLock { $0.lastRelease = instant }
    }

    /// Acquisitions, and the hand-off's p50 and p99 in ms.
    func summary() -> (Int, Double, Double) {
        state.withLock { state in
            let sorted = state.handoffs.sorted()
            func at(_ q: Double) -> Double { sorted.isEmpty ? 0 : sorted[min(sorted.count - 1, Int(Double(sorted.count) * q))] }
            return (state.acquisitions, at(0.5), at(0.99))
        }
    }
}
